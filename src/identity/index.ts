// Public surface of src/identity: the Keystone v3 session and the HTTP transport the OpenStack clients share.
export { compileAuth, InvalidAuthOptions, tokenUrlFor, type AuthType, type KeystoneAuthOptions } from './auth-options';
export {
  DEFAULT_TIMEOUT_SECONDS,
  HttpClient,
  openstackRequestId,
  type HttpClientOptions,
  type HttpMethod,
  type HttpRequest,
  type HttpResponse,
  type TlsOptions,
} from './http-client';
export {
  DEFAULT_RENEW_BEFORE_EXPIRY_SECONDS,
  KeystoneSession,
  type AccessInfo,
  type EndpointQuery,
  type KeystoneSessionDeps,
} from './keystone-session';
export {
  ConnectionError,
  InvalidResponse,
  RequestError,
  type FailedRequest,
  type FailedResponse,
} from './request-error';
export { globalRequestId, requestIdHeaders, requestLogFields, type RequestIds } from './request-id';
export {
  DEFAULT_VALID_INTERFACES,
  EndpointNotFound,
  normalizeInterface,
  selectEndpoint,
  type EndpointFilter,
} from './service-catalog';
