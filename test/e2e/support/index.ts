// The e2e support kit: the control plane, the real CLIs, waiting, and Berth as a child process.
export * from './berth-process';
export * from './compute';
export * from './control-plane';
export * from './image';
export * from './nova-manage';
export * from './openstack-cli';
export * from './placement';
export * from './repo-root';
export * from './wait';
