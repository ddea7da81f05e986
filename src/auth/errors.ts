/** Why a caller was refused. The message is safe to show and to log: it never holds the token. */
export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthError";
  }
}
