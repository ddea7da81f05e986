/**
 * The one definition of "this machine" for the gateway: the hosts for which plain `http:` is
 * accepted in a redirect URL, for which local mode prefills the admin caller in Sandbox, and (in
 * local mode) whose browser origins CORS admits. Deliberately narrow: the names a developer types,
 * not all of 127.0.0.0/8.
 */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** True when `host` (a listen address, or a URL's `hostname` with IPv6 in brackets) is a loopback host. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase());
}
