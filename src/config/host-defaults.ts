// Defaults that come from the machine Berth runs on, as Nova derives them (socket.gethostname, netutils.get_my_ipv4).
import { hostname, networkInterfaces } from 'node:os';

export function defaultHost(): string {
  return hostname();
}

/** The first non-loopback IPv4 address of this host, else 127.0.0.1. */
export function defaultMyIp(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const found = addresses?.find((address) => address.family === 'IPv4' && !address.internal);
    if (found !== undefined) return found.address;
  }
  return '127.0.0.1';
}
