import assert from 'node:assert/strict';
import {
  compileAuth,
  InvalidAuthOptions,
  tokenUrlFor,
  type KeystoneAuthOptions,
} from '../../../src/identity/auth-options';

const base = { auth_url: 'http://127.0.0.1:5000/v3' } as const;

describe('identity/auth-options', () => {
  describe('tokenUrlFor', () => {
    it('appends /auth/tokens to a /v3 URL and /v3/auth/tokens to a bare one', () => {
      assert.equal(tokenUrlFor('http://127.0.0.1:5000/v3'), 'http://127.0.0.1:5000/v3/auth/tokens');
      assert.equal(tokenUrlFor('http://127.0.0.1:5000/v3/'), 'http://127.0.0.1:5000/v3/auth/tokens');
      assert.equal(tokenUrlFor('http://127.0.0.1:5000'), 'http://127.0.0.1:5000/v3/auth/tokens');
      assert.equal(tokenUrlFor('https://127.0.0.1/identity/'), 'https://127.0.0.1/identity/v3/auth/tokens');
    });

    it('refuses what is not an http(s) URL', () => {
      assert.throws(() => tokenUrlFor('127.0.0.1:5000'), InvalidAuthOptions);
      assert.throws(() => tokenUrlFor('ftp://127.0.0.1/v3'), InvalidAuthOptions);
    });
  });

  describe('password', () => {
    it('builds the body of protocol §6.1 (user and project by name and domain name)', () => {
      const auth = compileAuth({
        ...base,
        auth_type: 'password',
        username: 'nova',
        password: 'secret',
        user_domain_name: 'Default',
        project_name: 'service',
        project_domain_name: 'Default',
      });
      assert.equal(auth.tokenUrl, 'http://127.0.0.1:5000/v3/auth/tokens');
      assert.deepEqual(auth.body, {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: 'nova', domain: { name: 'Default' }, password: 'secret' } },
          },
          scope: { project: { name: 'service', domain: { name: 'Default' } } },
        },
      });
      assert.equal(auth.principal, 'user nova (domain Default)');
      assert.doesNotMatch(auth.principal, /secret/);
    });

    it('v3password: user_id and project_id, ids win over names', () => {
      const auth = compileAuth({
        ...base,
        auth_type: 'v3password',
        user_id: 'u-1',
        username: 'ignored',
        password: 'pw',
        project_id: 'p-1',
        project_name: 'ignored',
      });
      assert.deepEqual(auth.body, {
        auth: {
          identity: { methods: ['password'], password: { user: { id: 'u-1', password: 'pw' } } },
          scope: { project: { id: 'p-1' } },
        },
      });
    });

    it('domain ids, and default_domain_* for what is not given', () => {
      const auth = compileAuth({
        ...base,
        auth_type: 'password',
        username: 'nova',
        password: 'pw',
        user_domain_id: 'dom-u',
        project_name: 'service',
        default_domain_id: 'default',
      });
      assert.deepEqual(auth.body['auth'], {
        identity: {
          methods: ['password'],
          password: { user: { name: 'nova', domain: { id: 'dom-u' }, password: 'pw' } },
        },
        scope: { project: { name: 'service', domain: { id: 'default' } } },
      });
    });

    it('system_scope all, and domain scope', () => {
      const sys = compileAuth({ ...base, auth_type: 'password', user_id: 'u', password: 'pw', system_scope: 'all' });
      assert.deepEqual((sys.body['auth'] as { scope: unknown }).scope, { system: { all: true } });
      const dom = compileAuth({ ...base, auth_type: 'password', user_id: 'u', password: 'pw', domain_name: 'Default' });
      assert.deepEqual((dom.body['auth'] as { scope: unknown }).scope, { domain: { name: 'Default' } });
    });

    it('no scope options: an unscoped request (no scope key)', () => {
      const auth = compileAuth({ ...base, auth_type: 'password', user_id: 'u', password: 'pw' });
      assert.equal('scope' in (auth.body['auth'] as object), false);
    });

    it('null means unset (config sections pass null for unset options)', () => {
      const auth = compileAuth({
        ...base,
        auth_type: 'password',
        user_id: null,
        username: 'nova',
        password: 'pw',
        user_domain_id: null,
        user_domain_name: 'Default',
        project_id: null,
        project_name: 'service',
        project_domain_name: 'Default',
        system_scope: null,
        endpoint_override: null,
      });
      assert.deepEqual((auth.body['auth'] as { scope: unknown }).scope, {
        project: { name: 'service', domain: { name: 'Default' } },
      });
    });
  });

  describe('application credentials', () => {
    it('by id: id and secret only, and scope options are reported as ignored', () => {
      for (const auth_type of ['v3applicationcredential', 'applicationcredential'] as const) {
        const auth = compileAuth({
          ...base,
          auth_type,
          application_credential_id: 'ac-1',
          application_credential_secret: 's3',
          project_name: 'service',
        });
        assert.deepEqual(auth.body, {
          auth: {
            identity: {
              methods: ['application_credential'],
              application_credential: { id: 'ac-1', secret: 's3' },
            },
          },
        });
        assert.deepEqual(auth.ignored, ['project_name']);
      }
    });

    it('by name: with the user by name and domain, or by id', () => {
      const byName = compileAuth({
        ...base,
        auth_type: 'v3applicationcredential',
        application_credential_name: 'berth',
        application_credential_secret: 's3',
        username: 'nova',
        user_domain_name: 'Default',
      });
      assert.deepEqual(byName.body, {
        auth: {
          identity: {
            methods: ['application_credential'],
            application_credential: {
              name: 'berth',
              user: { name: 'nova', domain: { name: 'Default' } },
              secret: 's3',
            },
          },
        },
      });
      const byUserId = compileAuth({
        ...base,
        auth_type: 'v3applicationcredential',
        application_credential_name: 'berth',
        application_credential_secret: 's3',
        user_id: 'u-1',
      });
      assert.deepEqual(
        ((byUserId.body['auth'] as Record<string, Record<string, unknown>>)['identity'] as Record<string, unknown>)[
          'application_credential'
        ],
        { name: 'berth', user: { id: 'u-1' }, secret: 's3' },
      );
    });
  });

  describe('refuses incomplete or contradictory options, naming the problem and never the secret', () => {
    const cases: Array<[string, KeystoneAuthOptions, RegExp]> = [
      ['no auth_type', { ...base, auth_type: null }, /auth_type is not set/],
      ['no auth_url', { auth_type: 'password', auth_url: null }, /auth_url is not set/],
      ['unknown auth_type', { ...base, auth_type: 'token' as never, user_id: 'u' }, /unsupported auth_type 'token'/],
      ['no password', { ...base, auth_type: 'password', user_id: 'u' }, /needs password/],
      ['no user', { ...base, auth_type: 'password', password: 'hunter2' }, /user_id or username/],
      [
        'username without domain',
        { ...base, auth_type: 'password', username: 'n', password: 'hunter2' },
        /user_domain/,
      ],
      [
        'project_name without domain',
        { ...base, auth_type: 'password', user_id: 'u', password: 'hunter2', project_name: 'p' },
        /project_domain/,
      ],
      [
        'project and domain scope',
        { ...base, auth_type: 'password', user_id: 'u', password: 'hunter2', project_id: 'p', domain_id: 'd' },
        /both a project and a domain/,
      ],
      [
        'system scope other than all',
        { ...base, auth_type: 'password', user_id: 'u', password: 'hunter2', system_scope: 'some' },
        /system_scope must be 'all'/,
      ],
      [
        'application credential without secret',
        { ...base, auth_type: 'v3applicationcredential', application_credential_id: 'a' },
        /application_credential_secret/,
      ],
      [
        'application credential without id or name',
        { ...base, auth_type: 'v3applicationcredential', application_credential_secret: 'hunter2' },
        /application_credential_id, or application_credential_name/,
      ],
      [
        'application credential name without user',
        {
          ...base,
          auth_type: 'v3applicationcredential',
          application_credential_name: 'a',
          application_credential_secret: 'hunter2',
        },
        /user_id or username/,
      ],
    ];
    for (const [what, options, message] of cases) {
      it(what, () => {
        assert.throws(
          () => compileAuth(options),
          (err: unknown) =>
            err instanceof InvalidAuthOptions &&
            err.name === 'InvalidAuthOptions' &&
            message.test(err.message) &&
            !err.message.includes('hunter2'),
        );
      });
    }
  });
});
