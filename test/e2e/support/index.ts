// The e2e support kit: the control plane, the real CLIs, waiting, Berth as a child process and as a suite's host,
// the Docker engines behind it, and the bus.
export * from './berth-host';
export * from './berth-process';
export * from './compute';
export * from './control-plane';
export * from './docker-engine';
export * from './image';
export * from './measure';
export * from './nova-manage';
export * from './openstack-cli';
export * from './placement';
export * from './rabbit';
export * from './repo-root';
export * from './wait';
export * from './migrations';
