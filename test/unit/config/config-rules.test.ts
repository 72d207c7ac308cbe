import assert from 'node:assert/strict';
import { ConfigError, loadConfigFromSources } from '../../../src/config';
import { captureLogger, load, removeTempFiles, tempFiles } from './helpers';

function rejects(texts: string[], message: string, option?: [string, string]): void {
  assert.throws(
    () => load(...texts),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.message, message);
      if (option !== undefined) assert.deepEqual([error.section, error.option], option);
      return true;
    },
  );
}

/** Loads exactly `text` (without MINIMAL's credentials). */
function loadAlone(text: string) {
  const log = captureLogger();
  return { config: loadConfigFromSources([{ path: 'only.conf', text }], { logger: log.logger }), log };
}

const BUS = '[DEFAULT]\ntransport_url = rabbit://u:p@127.0.0.1:5672/\n';
const PLACEMENT =
  '[placement]\nauth_type = password\nauth_url = http://127.0.0.1:5000/v3\nusername = placement\n' +
  'password = pw\nuser_domain_name = Default\nproject_name = service\nproject_domain_name = Default\n';

describe('config/config-rules', () => {
  after(removeTempFiles);

  it('verify_glance_signatures = true stops start-up: Berth cannot verify signatures', () => {
    rejects(
      ['[glance]\nverify_glance_signatures = true\n'],
      '[glance] verify_glance_signatures = true is not supported: Berth does not implement image signature ' +
        'verification, and would otherwise boot unverified images. Set it to false.',
      ['glance', 'verify_glance_signatures'],
    );
  });

  describe('[docker] TLS', () => {
    const files = (): Record<string, string> => tempFiles({ 'ca.pem': 'ca', 'cert.pem': 'cert', 'key.pem': 'key' });

    it('takes all three files for tcp:// or https://', () => {
      const f = files();
      const { config } = load(
        `[docker]\nhost_url = https://docker.example:2376\nca_file = ${f['ca.pem']}\n` +
          `cert_file = ${f['cert.pem']}\nkey_file = ${f['key.pem']}\n`,
      );
      assert.deepEqual([config.docker.ca_file, config.docker.cert_file, config.docker.key_file], [
        f['ca.pem'],
        f['cert.pem'],
        f['key.pem'],
      ]);
    });

    it('a partial set names what is missing', () => {
      const f = files();
      rejects(
        [`[docker]\nhost_url = tcp://docker.example:2376\nca_file = ${f['ca.pem']}\n`],
        '[docker] cert_file and key_file are missing: TLS to the Docker Engine needs ca_file, cert_file and ' +
          'key_file together (set: ca_file)',
        ['docker', 'cert_file'],
      );
      rejects(
        [`[docker]\nhost_url = tcp://docker.example:2376\nca_file = ${f['ca.pem']}\ncert_file = ${f['cert.pem']}\n`],
        '[docker] key_file is missing: TLS to the Docker Engine needs ca_file, cert_file and key_file together ' +
          '(set: ca_file, cert_file)',
        ['docker', 'key_file'],
      );
    });

    it('TLS files with a unix socket are a mistake', () => {
      const f = files();
      rejects(
        [`[docker]\nca_file = ${f['ca.pem']}\ncert_file = ${f['cert.pem']}\nkey_file = ${f['key.pem']}\n`],
        '[docker] ca_file, cert_file and key_file are set but host_url is a unix socket: use tcp:// or https://, ' +
          'or remove the TLS files',
        ['docker', 'host_url'],
      );
    });

    it('plain tcp:// to another host is warned about; to loopback it is not', () => {
      const remote = load('[docker]\nhost_url = tcp://10.0.0.5:2375\n').log.at('warn');
      assert.equal(remote.length, 1);
      assert.match(remote[0]?.msg ?? '', /unencrypted and unauthenticated/);
      assert.deepEqual(load('[docker]\nhost_url = tcp://127.0.0.1:2375\n').log.at('warn'), []);
    });
  });

  describe('[oslo_messaging_rabbit] TLS', () => {
    it('a client certificate needs its key', () => {
      const f = tempFiles({ 'cert.pem': 'cert' });
      rejects(
        [`[oslo_messaging_rabbit]\nssl = true\nssl_cert_file = ${f['cert.pem']}\n`],
        '[oslo_messaging_rabbit] ssl_key_file is missing: a client certificate needs both ssl_cert_file and ' +
          'ssl_key_file',
        ['oslo_messaging_rabbit', 'ssl_key_file'],
      );
    });

    it('TLS files without ssl = true are warned about', () => {
      const f = tempFiles({ 'ca.pem': 'ca' });
      const warnings = load(`[oslo_messaging_rabbit]\nssl_ca_file = ${f['ca.pem']}\n`).log.at('warn');
      assert.deepEqual(
        warnings.map((line) => line.msg),
        ['[oslo_messaging_rabbit] ssl_ca_file only take effect with ssl = true'],
      );
    });
  });

  describe('Keystone credentials', () => {
    it('[placement] needs one', () => {
      assert.throws(() => loadAlone(BUS), {
        name: 'ConfigError',
        message: '[placement] auth_type is required (Berth reports its inventory to Placement)',
      });
    });

    const incomplete: Record<string, [string, string]> = {
      'no password': ['password =\n', '[placement] password is required when auth_type = password'],
      'no auth_url': ['auth_url =\n', '[placement] auth_url is required when auth_type = password'],
      'no user domain': [
        'user_domain_name =\n',
        '[placement] user_domain_name (or user_domain_id) is required with username',
      ],
      'a project without its domain': [
        'project_domain_name =\n',
        '[placement] project_domain_name (or project_domain_id) is required with project_name',
      ],
      'no scope': [
        'project_name =\n',
        '[placement] project_name (or project_id or system_scope) is required when auth_type = password: ' +
          'Berth needs a scoped token',
      ],
    };
    for (const [name, [override, message]] of Object.entries(incomplete)) {
      it(`a password credential with ${name} stops start-up`, () => rejects([`[placement]\n${override}`], message));
    }

    it('default_domain_* stands in for the user and project domains; a domain scope works too', () => {
      const viaDefault = load('[placement]\nuser_domain_name =\nproject_domain_name =\ndefault_domain_id = default\n');
      assert.equal(viaDefault.config.placement.default_domain_id, 'default');
      const domainScoped = load('[placement]\nproject_name =\ndomain_name = Default\n');
      assert.equal(domainScoped.config.placement.domain_name, 'Default');
      rejects(
        ['[placement]\ndomain_name = Default\n'],
        '[placement] a token is scoped to a project or to a domain: set project_* or domain_*, not both',
        ['placement', 'domain_name'],
      );
      rejects(
        ['[placement]\nproject_name =\nsystem_scope = project\n'],
        '[placement] system_scope = "project" at test-1.conf:3 is not valid: expected one of all',
      );
    });

    it('user_id, project_id and system_scope stand in for names and domains', () => {
      const { config } = load(
        '[placement]\nusername =\nuser_domain_name =\nuser_id = u1\nproject_name =\nsystem_scope = all\n',
      );
      assert.equal(config.placement.user_id, 'u1');
      assert.equal(config.placement.system_scope, 'all');
    });

    it('application credentials: an id, or a name with its user', () => {
      const appCred = '[placement]\nauth_type = v3applicationcredential\napplication_credential_secret = acs\n';
      const byId = load(`${appCred}application_credential_id = ac1\n`).config.placement;
      assert.equal(byId.auth_type, 'v3applicationcredential');
      assert.equal(
        load(`${appCred}application_credential_name = ac\nuser_id = u1\n`).config.placement.application_credential_name,
        'ac',
      );
      rejects(
        [`${appCred}`.replace('application_credential_secret = acs\n', 'application_credential_id = ac1\n')],
        '[placement] application_credential_secret is required when auth_type = v3applicationcredential',
      );
      rejects(
        [`${appCred}username =\n`],
        '[placement] application_credential_id (or _name) is required when auth_type = v3applicationcredential',
      );
      rejects(
        [`${appCred}application_credential_name = ac\nusername =\n`],
        '[placement] username (or user_id) is required with application_credential_name',
      );
    });

    it('[glance] without a credential uses [service_user]\'s', () => {
      const { config } = load('[glance]\nregion_name = RegionOne\n');
      assert.equal(config.glance.auth_type, 'password');
      assert.equal(config.glance.username, 'nova');
      assert.equal(config.glance.password, 's3cret-pw');
      assert.equal(config.glance.region_name, 'RegionOne');
    });

    it('[glance] with a credential keeps its own, and it must be complete', () => {
      const glance = PLACEMENT.replace('[placement]', '[glance]').replace('username = placement', 'username = glance');
      const own = load(glance);
      assert.equal(own.config.glance.username, 'glance');
      rejects(
        ['[glance]\nusername = glance\n'],
        '[glance] auth_type is required (other [glance] credential options are set)',
      );
    });

    it('[glance] and [service_user] both without a credential stop start-up', () => {
      assert.throws(() => loadAlone(BUS + PLACEMENT), {
        name: 'ConfigError',
        message:
          '[glance] has no credential and [service_user] has none to fall back on: set auth_type, auth_url and the ' +
          'rest in [service_user] (or in [glance])',
      });
    });

    it('send_service_user_token = true needs a [service_user] credential', () => {
      const glance = PLACEMENT.replace('[placement]', '[glance]');
      assert.equal(loadAlone(BUS + PLACEMENT + glance).config.service_user.auth_type, null);
      assert.throws(() => loadAlone(`${BUS}${PLACEMENT}${glance}[service_user]\nsend_service_user_token = true\n`), {
        name: 'ConfigError',
        message: '[service_user] auth_type is required (send_service_user_token = true needs a service user)',
      });
    });

    it('the applicationcredential alias is accepted', () => {
      const text =
        '[placement]\nauth_type = applicationcredential\napplication_credential_id = a\n' +
        'application_credential_secret = s\n';
      assert.equal(load(text).config.placement.auth_type, 'applicationcredential');
    });
  });

  describe('report_interval and service_down_time', () => {
    it('service_down_time is raised to 2.5 x report_interval when not above it, as Nova does', () => {
      const { config, log } = load('[DEFAULT]\nreport_interval = 60\n');
      assert.equal(config.DEFAULT.service_down_time, 150);
      assert.deepEqual(
        log.at('warn').map((line) => line.msg),
        ['[DEFAULT] report_interval must be less than service_down_time: using service_down_time = 150, as Nova does'],
      );
    });

    it('is left alone otherwise', () => {
      const { config, log } = load('[DEFAULT]\nreport_interval = 30\n');
      assert.equal(config.DEFAULT.service_down_time, 60);
      assert.deepEqual(log.at('warn'), []);
    });
  });
});
