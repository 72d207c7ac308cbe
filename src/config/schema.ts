// The one source of truth for every option Berth reads: section, name, type, default, secrecy, help and the names
// Nova used to give it. Names and defaults are nova.conf's (Nova 26 / oslo.messaging 14) unless the help says
// "Berth's own". The sample config is rendered from this table and BerthConfig's type is derived from it.
import { defaultHost, defaultMyIp } from './host-defaults';
import { keystoneAuthOptions } from './keystone-auth';
import {
  boolean,
  capability,
  choice,
  derived,
  dockerHostUrl,
  float,
  hostDomain,
  integer,
  ipAddress,
  list,
  logSize,
  multiOption,
  option,
  path,
  string,
  transportUrl,
  url,
  type Option,
  type OptionValue,
} from './option-types';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export const NOTIFICATION_DRIVERS = ['messagingv2', 'messaging', 'noop', 'log'] as const;

/** Docker's default capability set minus MKNOD, NET_RAW, AUDIT_WRITE and SETFCAP. */
const DEFAULT_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
];

const defaultSection = {
  host: option(hostDomain, {
    default: derived("this host's name (os.hostname())", defaultHost),
    help:
      'Name of this compute host: the RPC server name (queue compute.<host>) and the host of the service record. ' +
      'Changing it makes a different compute service in Nova.',
  }),
  hypervisor_hostname: option(string(), {
    default: derived('the value of [DEFAULT] host', (lookup) => lookup.get('DEFAULT', 'host') as string),
    help:
      "Berth's own. Name of this host's single compute node (ComputeNode.hypervisor_hostname) and of its " +
      'Placement resource provider.',
  }),
  state_path: option(path(), {
    default: '/var/lib/berth',
    help:
      "Directory for Berth's local state (the compute node UUID and the like). A relative path is resolved against " +
      'the working directory at start-up. Note that Debian\'s nova.conf sets this to /var/lib/nova.',
  }),
  transport_url: option(transportUrl, {
    required: true,
    secret: true,
    help:
      'The RabbitMQ of the cell this host belongs to: ' +
      'rabbit://user:password@host:port[,user:password@host:port...]/virtual_host.',
  }),
  control_exchange: option(string(), {
    default: 'nova',
    help: 'The exchange RPC topics are scoped under; Nova uses "nova".',
  }),
  my_ip: option(ipAddress, {
    default: derived('the first non-loopback IPv4 address of this host, else 127.0.0.1', defaultMyIp),
    help: 'The IP address of this host on the management network (reported as host_ip).',
  }),
  report_interval: option(integer({ min: 1 }), {
    default: 10,
    help: 'Seconds between service heartbeats (Service.save). Keep it well below service_down_time.',
  }),
  service_down_time: option(integer({ min: 1 }), {
    default: 60,
    help:
      'Seconds without a heartbeat after which Nova considers a service down. If report_interval is not below it, ' +
      'Berth raises it to 2.5 x report_interval (as Nova does) and warns.',
  }),
  rpc_response_timeout: option(integer({ min: 1 }), {
    default: 60,
    help: 'Seconds to wait for the reply to an RPC call.',
  }),
  long_rpc_timeout: option(integer({ min: 1 }), {
    default: 1800,
    help: 'Seconds to wait for the reply to an RPC call that may take long (while the callee sends heartbeats).',
  }),
  periodic_fuzzy_delay: option(integer({ min: 0 }), {
    default: 60,
    help: 'Up to this many seconds of random delay before the first periodic task run (0: none).',
  }),
  update_resources_interval: option(integer(), {
    default: 0,
    help:
      'Seconds between resource tracker runs (ComputeNode and Placement inventory): 0 = every periodic tick ' +
      '(60 s), negative = never.',
  }),
  sync_power_state_interval: option(integer(), {
    default: 600,
    help:
      'Seconds between power-state sync sweeps (Docker events drive the sync; this is the safety net): ' +
      '0 = every periodic tick, negative = never.',
  }),
  reserved_host_memory_mb: option(integer({ min: 0 }), {
    default: 512,
    help: 'Memory (MB) reported to Placement as reserved for the host.',
  }),
  reserved_host_cpus: option(integer({ min: 0 }), {
    default: 0,
    help: 'CPUs reported to Placement as reserved for the host.',
  }),
  reserved_host_disk_mb: option(integer({ min: 0 }), {
    default: 0,
    help: 'Disk (MB) reported to Placement as reserved for the host.',
  }),
  cpu_allocation_ratio: option(float({ min: 0 }), {
    help:
      'VCPU allocation ratio. When set (and not 0.0) it overwrites the ratio in Placement on every update; ' +
      'unset leaves what is there (initially initial_cpu_allocation_ratio).',
  }),
  ram_allocation_ratio: option(float({ min: 0 }), {
    help: 'MEMORY_MB allocation ratio; like cpu_allocation_ratio.',
  }),
  disk_allocation_ratio: option(float({ min: 0 }), {
    help: 'DISK_GB allocation ratio; like cpu_allocation_ratio.',
  }),
  initial_cpu_allocation_ratio: option(float({ min: 0 }), {
    default: 16.0,
    help: 'VCPU allocation ratio used when the compute node is first created.',
  }),
  initial_ram_allocation_ratio: option(float({ min: 0 }), {
    default: 1.5,
    help: 'MEMORY_MB allocation ratio used when the compute node is first created.',
  }),
  initial_disk_allocation_ratio: option(float({ min: 0 }), {
    default: 1.0,
    help: 'DISK_GB allocation ratio used when the compute node is first created.',
  }),
  max_concurrent_builds: option(integer({ min: 0 }), {
    default: 10,
    help: 'Most instance builds to run at once (0: unlimited).',
  }),
  instance_name_template: option(string(), {
    default: 'instance-%08x',
    help: 'Template of Instance.name (Python %-format over the instance id or %(uuid)s etc.), as Nova has it.',
  }),
  enable_new_services: option(boolean, {
    default: true,
    help: 'Register a new compute service as enabled (false: an operator must enable it).',
  }),
  shutdown_timeout: option(integer({ min: 0 }), {
    default: 60,
    help:
      'Seconds an instance gets to stop cleanly (SIGTERM) before it is killed; the image property ' +
      'os_shutdown_timeout overrides it. 0: kill at once.',
  }),
  resume_guests_state_on_host_boot: option(boolean, {
    default: false,
    help: 'At start-up, start again the instances that Nova thinks are running but whose containers are not.',
  }),
  running_deleted_instance_action: option(choice(['reap', 'log', 'shutdown', 'noop']), {
    default: 'reap',
    help: 'What to do with a container whose instance is deleted in Nova: reap (remove), log, shutdown or noop.',
  }),
  running_deleted_instance_poll_interval: option(integer({ min: 0 }), {
    default: 1800,
    help: 'Seconds between checks for containers of deleted instances (0: never).',
  }),
  instance_build_timeout: option(integer({ min: 0 }), {
    default: 0,
    help: 'Seconds after which an instance still building is set to ERROR (0: never).',
  }),
  scheduler_instance_sync_interval: option(integer(), {
    default: 120,
    help:
      "Seconds between sending the scheduler this host's instance UUIDs (sync_instance_info): 0 = every periodic " +
      'tick, negative = never. Only with [filter_scheduler] track_instance_changes.',
  }),
  graceful_shutdown_timeout: option(integer({ min: 0 }), {
    default: 20,
    help:
      "oslo.service's option; Berth's default is 20. Seconds Berth takes after SIGTERM to finish the work in " +
      'hand before it exits anyway (0: no limit). Keep it below the unit\'s TimeoutStopSec.',
  }),
  debug: option(boolean, {
    default: false,
    help: 'Log at debug level (oslo.log\'s option). log_level, when set, wins.',
  }),
  log_level: option(choice(LOG_LEVELS), {
    default: derived('debug if [DEFAULT] debug is true, else info', (lookup) =>
      lookup.get('DEFAULT', 'debug') === true ? 'debug' : 'info',
    ),
    help: "Berth's own. Log level: trace, debug, info, warn or error.",
  }),
};

const osloMessagingRabbit = {
  amqp_durable_queues: option(boolean, { default: false, help: 'Declare durable queues and exchanges.' }),
  amqp_auto_delete: option(boolean, {
    default: false,
    help: 'Declare auto-delete queues and exchanges.',
    deprecatedNames: [{ section: 'DEFAULT' }],
  }),
  rabbit_ha_queues: option(boolean, {
    default: false,
    help: 'Declare queues with x-ha-policy: all (mirrored queues of RabbitMQ < 3.0).',
    deprecatedNames: [{ section: 'DEFAULT' }],
  }),
  rabbit_quorum_queue: option(boolean, {
    default: false,
    help: 'Declare quorum queues (x-queue-type: quorum); they are always durable.',
  }),
  rabbit_transient_queues_ttl: option(integer({ min: 1 }), {
    default: 1800,
    help: 'Seconds an unused reply or fanout queue lives (x-expires).',
  }),
  heartbeat_timeout_threshold: option(integer({ min: 0 }), {
    default: 60,
    help: 'AMQP heartbeat timeout in seconds (0: no heartbeats).',
  }),
  heartbeat_rate: option(integer({ min: 1 }), {
    default: 2,
    help: 'How many times per heartbeat_timeout_threshold the heartbeat is checked.',
  }),
  rabbit_retry_interval: option(integer({ min: 1 }), {
    default: 1,
    help: 'Seconds before the first reconnection attempt.',
  }),
  rabbit_retry_backoff: option(integer({ min: 0 }), {
    default: 2,
    help: 'Seconds added to the wait after every failed reconnection attempt.',
    deprecatedNames: [{ section: 'DEFAULT' }],
  }),
  rabbit_interval_max: option(integer({ min: 1 }), {
    default: 30,
    help: 'Longest wait in seconds between reconnection attempts.',
  }),
  kombu_missing_consumer_retry_timeout: option(integer({ min: 0 }), {
    default: 60,
    help: 'Seconds to keep retrying a reply whose reply queue is missing; keep it <= rpc_response_timeout.',
    deprecatedNames: [{ name: 'kombu_reconnect_timeout' }],
  }),
  rabbit_login_method: option(choice(['AMQPLAIN', 'PLAIN', 'EXTERNAL']), {
    default: 'AMQPLAIN',
    help: 'The SASL mechanism to log in to RabbitMQ with (EXTERNAL: the TLS client certificate).',
    deprecatedNames: [{ section: 'DEFAULT' }],
  }),
  rabbit_qos_prefetch_count: option(integer({ min: 0 }), {
    default: 0,
    help: 'Unacknowledged messages a consumer may hold (basic.qos prefetch; 0: unlimited).',
  }),
  ssl: option(boolean, {
    default: false,
    help: 'Connect to RabbitMQ over TLS.',
    deprecatedNames: [{ name: 'rabbit_use_ssl' }],
  }),
  ssl_ca_file: option(path({ readableFile: true }), {
    help: 'PEM CA bundle to verify the broker with (with ssl = true).',
    deprecatedNames: [{ name: 'kombu_ssl_ca_certs' }],
  }),
  ssl_cert_file: option(path({ readableFile: true }), {
    help: 'PEM client certificate (with ssl = true; needs ssl_key_file).',
    deprecatedNames: [{ name: 'kombu_ssl_certfile' }],
  }),
  ssl_key_file: option(path({ readableFile: true }), {
    help: 'PEM client key (with ssl = true; needs ssl_cert_file).',
    deprecatedNames: [{ name: 'kombu_ssl_keyfile' }],
  }),
  max_message_size_mb: option(integer({ min: 1 }), {
    default: 16,
    help: "Berth's own. Largest message (MB) Berth accepts from the bus; a larger one is rejected and logged.",
  }),
};

const osloMessagingNotifications = {
  driver: multiOption(list(choice(NOTIFICATION_DRIVERS), 'notification drivers'), {
    default: [],
    help:
      'Notification drivers: messagingv2 (Nova\'s usual), messaging, log or noop. Empty (the default) or only noop ' +
      'disables notifications. May be repeated, or comma-separated.',
    deprecatedNames: [{ section: 'DEFAULT', name: 'notification_driver' }],
  }),
  topics: option(list(string(), 'topics'), {
    default: ['notifications'],
    help: 'Topics the legacy (unversioned) notifications are sent to.',
    deprecatedNames: [
      { section: 'rpc_notifier2', name: 'topics' },
      { section: 'DEFAULT', name: 'notification_topics' },
    ],
  }),
  transport_url: option(transportUrl, {
    default: derived(
      'the value of [DEFAULT] transport_url',
      (lookup) => lookup.get('DEFAULT', 'transport_url') as string,
    ),
    secret: true,
    help: 'The RabbitMQ for notifications, if not the RPC one.',
    deprecatedNames: [{ section: 'DEFAULT', name: 'notification_transport_url' }],
  }),
};

const notifications = {
  notification_format: option(choice(['unversioned', 'versioned', 'both']), {
    default: 'unversioned',
    help: 'Which notifications to emit: unversioned (legacy), versioned or both.',
    deprecatedNames: [{ section: 'DEFAULT' }],
  }),
  versioned_notifications_topics: option(list(string(), 'topics'), {
    default: ['versioned_notifications'],
    help: 'Topics the versioned notifications are sent to.',
  }),
  notify_on_state_change: option(choice(['vm_state', 'vm_and_task_state']), {
    help: 'Accepted for nova.conf compatibility; the compute host does not use it (nova-conductor does).',
    deprecatedNames: [{ section: 'DEFAULT' }],
  }),
  default_level: option(choice(['DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL']), {
    default: 'INFO',
    help: 'Priority of notifications that do not set their own.',
    deprecatedNames: [{ section: 'DEFAULT', name: 'default_notification_level' }],
  }),
};

const glance = {
  ...keystoneAuthOptions(
    'Glance',
    ' If [glance] sets no credential option at all, Berth uses the credential of [service_user] for Glance.',
  ),
  api_servers: option(list(url(['http', 'https']), 'Glance URLs'), {
    help: 'Glance endpoints to use instead of the service catalog (Nova deprecates this; prefer endpoint_override).',
  }),
  num_retries: option(integer({ min: 0 }), {
    default: 3,
    help: 'Retries of a failed image download or upload (0: none).',
  }),
  verify_glance_signatures: option(boolean, {
    default: false,
    help: 'Must stay false: Berth does not implement image signature verification, so true stops start-up.',
  }),
};

/** Nova's [image_cache] (nova/conf/imagecache.py): what the image cache manager keeps and when it removes. */
const imageCache = {
  manager_interval: option(integer({ min: -1 }), {
    default: 2400,
    help:
      'Seconds between runs of the image cache manager, which removes cached Glance images no instance on this ' +
      'host uses: 0 = every periodic tick (60 s), -1 = never.',
    deprecatedNames: [{ section: 'DEFAULT', name: 'image_cache_manager_interval' }],
  }),
  remove_unused_base_images: option(boolean, {
    default: true,
    help:
      'Remove cached images (berth-glance:<image id>) that no instance and no container on this host uses. When ' +
      'false, the manager only logs what it would remove.',
    deprecatedNames: [{ section: 'DEFAULT' }],
  }),
  remove_unused_original_minimum_age_seconds: option(integer({ min: 0 }), {
    default: 86400,
    help:
      'Seconds a cached image must have been unused before it is removed. The clock is kept under state_path, ' +
      'so a restart does not reset it.',
    deprecatedNames: [{ section: 'DEFAULT' }],
  }),
  precache_concurrency: option(integer({ min: 1 }), {
    default: 1,
    help:
      "How many images of one cache_images request (openstack aggregate cache image) this host downloads at once. " +
      "In Nova the conductor reads it as the number of hosts it asks at once; Berth's compute also bounds its own " +
      'downloads with it (1: one after the other, as nova-compute does).',
  }),
};

const docker = {
  host_url: option(dockerHostUrl, {
    default: 'unix:///var/run/docker.sock',
    help: 'The Docker Engine: unix:///path/to/docker.sock, tcp://host:port or https://host:port.',
  }),
  ca_file: option(path({ readableFile: true }), {
    help: 'PEM CA to verify the Docker Engine with (TLS: set ca_file, cert_file and key_file, or none of them).',
  }),
  cert_file: option(path({ readableFile: true }), { help: 'PEM client certificate for the Docker Engine (TLS).' }),
  key_file: option(path({ readableFile: true }), { help: 'PEM client key for the Docker Engine (TLS).' }),
  min_api_version: option(string({ pattern: /^\d+\.\d+$/, expected: 'a Docker API version such as 1.41' }), {
    default: '1.41',
    help: 'Oldest Docker Engine API version Berth accepts from the daemon.',
  }),
  capabilities: option(list(capability, 'Linux capability names'), {
    default: DEFAULT_CAPABILITIES,
    help: 'Capabilities every container gets (all others are dropped); with or without CAP_.',
  }),
  allowed_extra_capabilities: option(list(capability, 'Linux capability names'), {
    default: [],
    help: 'Capabilities a flavor may add with the extra spec docker:cap_add (empty: none).',
  }),
  pids_limit: option(integer({ min: 1 }), { default: 1024, help: 'Most processes in one container.' }),
  read_only_root_filesystem: option(boolean, {
    default: false,
    help: "Mount each container's root filesystem read-only.",
  }),
  no_new_privileges: option(boolean, {
    default: true,
    help: 'Run containers with no-new-privileges (setuid binaries cannot raise privileges).',
  }),
  allowed_flavor_extra_specs: option(
    list(string({ pattern: /^docker:[A-Za-z0-9_.:-]+$/, expected: 'a docker:* key' }), 'docker:* extra spec keys'),
    {
      default: [],
      help:
        'Flavor extra specs (docker:* keys) that may relax the default confinement, such as docker:pids_limit above ' +
        'pids_limit or docker:read_only_root = false; the docker driver says which keys it knows. Tightening needs ' +
        'no permission here.',
    },
  ),
  inject_metadata_as_env: option(boolean, {
    default: false,
    help: "Pass each instance's metadata to its container as environment variables (false: it stays in Nova).",
  }),
  log_max_size: option(logSize, {
    default: '10m',
    help: "Size at which a container's json-file log is rotated (Docker's max-size).",
  }),
  api_timeout: option(integer({ min: 1, max: 2_147_483 }), {
    default: 60,
    help:
      'Seconds the Docker Engine has to answer a request (stop and restart: their grace period plus this; image ' +
      'load and save: this long without moving a byte). A request that misses it is aborted and the operation ' +
      'fails with a fault instead of holding the instance in a task state. An idle event stream is checked with a ' +
      'ping after this long.',
  }),
  snapshot_timeout: option(integer({ min: 1, max: 2_147_483 }), {
    default: 600,
    help: 'Seconds a snapshot may take for docker commit, and for docker save before its first byte (both work silently).',
  }),
  driver: option(choice(['docker', 'fake']), {
    default: 'docker',
    help: 'The runtime driver: docker, or fake (no containers; for benchmarks and tests).',
  }),
};

export const SCHEMA = {
  DEFAULT: defaultSection,
  oslo_messaging_rabbit: osloMessagingRabbit,
  oslo_messaging_notifications: osloMessagingNotifications,
  notifications,
  placement: keystoneAuthOptions('Placement'),
  service_user: {
    ...keystoneAuthOptions('the service user'),
    send_service_user_token: option(boolean, {
      default: false,
      help: 'Send a service token with the user token on calls made on behalf of a user.',
    }),
  },
  glance,
  filter_scheduler: {
    track_instance_changes: option(boolean, {
      default: true,
      help: "Tell the scheduler about this host's instances (update/delete/sync_instance_info casts).",
    }),
  },
  compute: {
    resource_provider_association_refresh: option(integer({ min: 0 }), {
      default: 300,
      help: "Seconds between refreshes of the cached provider's inventory, aggregates and traits (0: never).",
    }),
    consecutive_build_service_disable_threshold: option(integer(), {
      default: 10,
      help: 'Accepted for nova.conf compatibility: build failures are reported for the BuildFailureWeigher.',
    }),
  },
  image_cache: imageCache,
  docker,
} satisfies Record<string, Record<string, Option<unknown>>>;

export type Schema = typeof SCHEMA;
export type SectionName = keyof Schema;

/** What each section is for, shown in the sample config. */
export const SECTION_HELP: Readonly<Record<SectionName, string>> = {
  DEFAULT: 'The compute service itself.',
  oslo_messaging_rabbit: 'RabbitMQ behaviour (oslo.messaging rabbit driver).',
  oslo_messaging_notifications: 'Where notifications go.',
  notifications: 'Which notifications Nova-style code emits.',
  placement: 'Keystone credentials and endpoint for Placement (required).',
  service_user: 'The service user: its token accompanies user tokens; [glance] falls back to its credential.',
  glance: 'Image downloads and snapshot uploads.',
  filter_scheduler: 'Scheduler integration.',
  compute: 'Compute manager tuning.',
  image_cache: 'The image cache manager: cached Glance images, when unused ones are removed, pre-caching.',
  docker: "Berth's own: the Docker Engine and how containers are confined.",
};

/** Nova sections that Berth never reads: ignored with one debug line, not a warning. */
export const IGNORED_NOVA_SECTIONS: ReadonlySet<string> = new Set([
  'api',
  'api_database',
  'barbican',
  'barbican_service_user',
  'cache',
  'cinder',
  'conductor',
  'console',
  'consoleauth',
  'cors',
  'cyborg',
  'database',
  'devices',
  'ephemeral_storage_encryption',
  'guestfs',
  'healthcheck',
  'hyperv',
  'ironic',
  'key_manager',
  'keystone',
  'keystone_authtoken',
  'libvirt',
  'metrics',
  'mks',
  'neutron',
  'os_brick',
  'os_vif_linux_bridge',
  'os_vif_ovs',
  'oslo_concurrency',
  'oslo_limit',
  'oslo_messaging_amqp',
  'oslo_messaging_kafka',
  'oslo_middleware',
  'oslo_policy',
  'oslo_reports',
  'oslo_versionedobjects',
  'pci',
  'privsep',
  'privsep_osbrick',
  'profiler',
  'quota',
  'rdp',
  'remote_debug',
  'scheduler',
  'serial_console',
  'spice',
  'upgrade_levels',
  'vault',
  'vendordata_dynamic_auth',
  'vmware',
  'vnc',
  'workarounds',
  'wsgi',
  'zvm',
]);

/** The loaded, validated configuration: nova.conf's section and option names, verbatim. Deeply frozen. */
export type BerthConfig = {
  readonly [S in SectionName]: { readonly [O in keyof Schema[S]]: OptionValue<Schema[S][O]> };
};
