/**
 * The OpenAPI 3.1 description of the management API, served at `/api/openapi.json`. Kept by hand next to the routes
 * (src/management/api/app.ts); test/management/api.test.ts checks every documented path answers.
 */
const json = (schema: unknown) => ({ 'application/json': { schema } });
const ok = (description: string, schema: unknown = { type: 'object' }) => ({
  200: { description, content: json(schema) },
  401: { description: 'not authenticated' },
  403: { description: 'access level too low, or CSRF token missing/wrong on a cookie session' },
});
const issues = {
  type: 'object',
  properties: {
    error: { const: 'invalid-config' },
    issues: {
      type: 'array',
      items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } },
    },
  },
};
const changeResult = {
  type: 'object',
  properties: {
    changed: { type: 'array', items: { type: 'string' } },
    live: { type: 'array', items: { type: 'string' }, description: 'fields applied at once' },
    restartRequired: { type: 'array', items: { type: 'string' }, description: 'fields applied at the next start' },
  },
};

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Crossway management API',
    version: '1',
    description:
      'Status and configuration of one Crossway node. Authenticate with HTTP Basic (management systems) or with a ' +
      'session from POST /api/v1/login; with a session cookie, every state-changing request carries the CSRF token ' +
      'in the x-csrf-token header. Access levels: read-only (status, configuration), auditor (also the audit log), ' +
      'read-write (everything).',
  },
  components: {
    securitySchemes: {
      basic: { type: 'http', scheme: 'basic' },
      session: { type: 'apiKey', in: 'cookie', name: 'cw_session' },
    },
  },
  security: [{ basic: [] }, { session: [] }],
  paths: {
    '/api/v1/login': {
      post: {
        summary: 'Open a session',
        security: [],
        requestBody: {
          content: json({
            type: 'object',
            required: ['user', 'password'],
            properties: { user: { type: 'string' }, password: { type: 'string' } },
          }),
        },
        responses: {
          200: {
            description: 'session cookie set; body has the CSRF token',
            content: json({
              type: 'object',
              properties: { user: { type: 'string' }, level: { type: 'string' }, csrf: { type: 'string' } },
            }),
          },
          401: { description: 'refused' },
          429: { description: 'too many failed logins from this address' },
        },
      },
    },
    '/api/v1/logout': { post: { summary: 'Close the session', responses: ok('closed') } },
    '/api/v1/status': { get: { summary: 'Every status section of the node', responses: ok('status') } },
    '/api/v1/status/{section}': {
      get: {
        summary:
          'One status section: system, sip, zones, alarms, ports, feedback, and registrations, calls, ' +
          'callHistory, searchHistory, routingZones, turn where the node provides them',
        parameters: [{ name: 'section', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { ...ok('the section'), 404: { description: 'no such section on this node' } },
      },
    },
    '/api/v1/ports': {
      get: { summary: 'The port plan (same document as `crossway ports --format json`)', responses: ok('plan') },
    },
    '/api/v1/alarms': { get: { summary: 'Raised alarms', responses: ok('alarms', { type: 'array' }) } },
    '/api/v1/config': {
      get: { summary: 'The running configuration (secrets as ********)', responses: ok('configuration') },
      put: {
        summary: 'Replace the configuration (read-write); persisted in the node store and audited',
        requestBody: { content: json({ type: 'object' }) },
        responses: { ...ok('saved', changeResult), 400: { description: 'refused', content: json(issues) } },
      },
      patch: {
        summary: 'Change part of the configuration with a JSON merge patch (RFC 7396) (read-write)',
        requestBody: {
          content: { 'application/merge-patch+json': { schema: { type: 'object' } }, ...json({ type: 'object' }) },
        },
        responses: { ...ok('saved', changeResult), 400: { description: 'refused', content: json(issues) } },
      },
    },
    '/api/v1/config/validate': {
      post: {
        summary: 'Validate a whole configuration without saving it',
        requestBody: { content: json({ type: 'object' }) },
        responses: { ...ok('valid', changeResult), 400: { description: 'invalid', content: json(issues) } },
      },
    },
    '/api/v1/audit': {
      get: { summary: 'Audit log, newest first (auditor, read-write)', responses: ok('records', { type: 'array' }) },
    },
    '/api/v1/accounts': {
      get: { summary: 'Local administrator accounts (read-write)', responses: ok('accounts', { type: 'array' }) },
      post: {
        summary: 'Create or replace a local account (read-write)',
        requestBody: {
          content: json({
            type: 'object',
            required: ['name', 'level', 'password'],
            properties: {
              name: { type: 'string' },
              level: { enum: ['read-write', 'read-only', 'auditor'] },
              password: { type: 'string', minLength: 12 },
            },
          }),
        },
        responses: ok('created'),
      },
    },
    '/api/v1/accounts/{name}': {
      delete: {
        summary: 'Delete a local account (read-write)',
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
        responses: ok('deleted'),
      },
    },
    '/api/v1/subscriptions': {
      get: { summary: 'Feedback subscriptions and their delivery counters', responses: ok('subscriptions') },
      post: {
        summary: 'Register a feedback subscription (read-write)',
        requestBody: {
          content: json({
            type: 'object',
            required: ['url'],
            properties: {
              url: { type: 'string' },
              events: { type: 'array', items: { type: 'string' } },
              username: { type: 'string' },
              password: { type: 'string' },
            },
          }),
        },
        responses: ok('registered'),
      },
    },
    '/api/v1/subscriptions/{id}': {
      delete: {
        summary: 'Remove a subscription registered through the API (read-write)',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
        responses: ok('removed'),
      },
    },
    '/metrics': {
      get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } },
    },
  },
} as const;
