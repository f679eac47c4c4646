/**
 * The OpenAPI 3.1 description of the management API, served at `/api/openapi.json`. Kept by hand next to the routes
 * (src/management/api/app.ts); test/management/api.test.ts checks every documented path answers. The configuration
 * schemas are generated from the file's zod schema; the feedback event body (`components.schemas.FeedbackEvent`,
 * also the `feedbackEvent` webhook) is written here and checked against the events nodes send
 * (test/management/feedback-sipp.test.ts).
 */
import { z } from 'zod';
import { configSchema, feedbackEventSchema } from '../../config/schema.ts';

/** Every status section a node may serve (`GET /api/v1/status/{section}`); each node serves those it has. */
export const STATUS_SECTIONS = [
  'system',
  'sip',
  'zones',
  'alarms',
  'ports',
  'feedback',
  'registrations',
  'calls',
  'callHistory',
  'callRecords',
  'searchHistory',
  'routingZones',
  'media',
  'turn',
] as const;

type JsonSchema = Record<string, unknown>;

/** The zod schema as JSON Schema (2020-12, which OpenAPI 3.1 uses), without its `$schema` line. */
function fromZod(io: 'input' | 'output'): JsonSchema {
  const { $schema: _, ...schema } = z.toJSONSchema(configSchema, { io, unrepresentable: 'any' }) as JsonSchema;
  return schema;
}

/**
 * A JSON merge patch (RFC 7396) of a document of `schema`: every field optional, `null` removes it, no defaults.
 * Arrays are replaced whole, so their items keep their own rules.
 */
function mergePatchOf(schema: JsonSchema): JsonSchema {
  if (schema.type !== 'object' || typeof schema.properties !== 'object' || schema.properties === null) return schema;
  const { required: _r, default: _d, properties, ...rest } = schema;
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(properties as Record<string, JsonSchema>)) {
    props[k] = { anyOf: [mergePatchOf(v), { type: 'null' }] };
  }
  return { ...rest, properties: props };
}

const configInput = fromZod('input');

const str = { type: 'string' };
const strOrNull = { type: ['string', 'null'] };
const callBase = {
  callId: str,
  protocol: { enum: ['sip', 'h323'] },
  from: { type: 'string', description: 'caller (SIP From URI, or H.323 aliases as kind:value,…)' },
  to: { type: 'string', description: 'called party (SIP request URI, or H.323 aliases)' },
};
const alarmBase = { id: str, severity: { enum: ['critical', 'major', 'minor', 'warning'] }, message: str };

/** One feedback event of a kind: `event` names it, `data` is its shape. */
function eventOf(names: readonly string[], description: string, data: JsonSchema, required: readonly string[]) {
  return {
    description,
    type: 'object',
    required: ['seq', 'event', 'node', 'time', 'data'],
    properties: {
      seq: { type: 'integer', minimum: 1, description: 'increasing per node kind: the subscriber sees this order' },
      event: { enum: names },
      node: { enum: ['edge', 'core'], description: 'the node kind that sent it' },
      time: { type: 'string', format: 'date-time' },
      data: { type: 'object', required, properties: data, additionalProperties: false },
    },
    additionalProperties: false,
  };
}

/** The body of each feedback POST (docs/management.md, "Feedback events"). */
export const FEEDBACK_EVENT_SCHEMA = {
  oneOf: [
    eventOf(
      ['registration', 'unregistration'],
      'SIP: an address of record gained its first binding, or lost its last one (removed, expired, flow failed)',
      {
        protocol: { enum: ['sip'] },
        aor: str,
        bindings: { type: 'integer', minimum: 0, description: 'bindings left' },
      },
      ['protocol', 'aor', 'bindings'],
    ),
    eventOf(
      ['registration', 'unregistration'],
      'H.323: an endpoint registered with the gatekeeper, or its registration ended (a re-registration of the same ' +
        'endpoint is neither)',
      {
        protocol: { enum: ['h323'] },
        endpointIdentifier: str,
        aliases: { type: 'array', items: str, description: 'kind:value (h323-ID:alice, dialledDigits:2001, …)' },
        callSignalAddress: { type: 'string', description: 'ip:port[,ip:port…]' },
        reason: {
          enum: ['endpoint', 'expired', 'administrator'],
          description:
            'unregistration only: URQ from the endpoint, keep-alives stopped, or removed by an administrator',
        },
      },
      ['protocol', 'endpointIdentifier', 'aliases', 'callSignalAddress'],
    ),
    eventOf(['call-attempt'], 'a call arrived and is being routed', { ...callBase, sourceZone: str }, [
      'callId',
      'protocol',
      'from',
      'to',
      'sourceZone',
    ]),
    eventOf(['call-connected'], 'the call was answered', { ...callBase, targetZone: strOrNull }, [
      'callId',
      'protocol',
      'from',
      'to',
      'targetZone',
    ]),
    eventOf(
      ['call-disconnected'],
      'the call ended (answered or not)',
      {
        ...callBase,
        status: { type: ['integer', 'null'], description: 'final status (200 for an answered call)' },
        cause: { ...strOrNull, description: 'bye from caller, bye from callee, media timeout, 486 Busy Here…' },
      },
      ['callId', 'protocol', 'from', 'to', 'status', 'cause'],
    ),
    eventOf(
      ['alarm-raised'],
      'an alarm was raised (or its severity or text changed)',
      { ...alarmBase, raisedAt: { type: 'integer', description: 'when first raised, ms since 1970' } },
      ['id', 'severity', 'message', 'raisedAt'],
    ),
    eventOf(['alarm-lowered'], 'an alarm was lowered', alarmBase, ['id', 'severity', 'message']),
    eventOf(
      ['config-change'],
      'the configuration was changed through the API or the UI',
      {
        by: { type: 'string', description: 'administrator' },
        from: { type: 'string', description: 'their address' },
        changed: { type: 'array', items: str },
        restartRequired: { type: 'array', items: str },
      },
      ['by', 'from', 'changed', 'restartRequired'],
    ),
    eventOf(
      ['zone-state'],
      'a traversal client zone changed state',
      {
        zone: str,
        peer: str,
        state: { enum: ['checking', 'active', 'failed', 'stopped'] },
        previous: { type: ['string', 'null'], enum: ['checking', 'active', 'failed', 'stopped', null] },
      },
      ['zone', 'peer', 'state', 'previous'],
    ),
  ],
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
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
    schemas: {
      Config: { ...configInput, description: 'A configuration document: the same schema as the file' },
      ConfigPatch: { ...mergePatchOf(configInput), description: 'A JSON merge patch (RFC 7396) of a Config' },
      RunningConfig: { ...fromZod('output'), description: 'The running configuration, defaults filled in' },
      FeedbackEvent: FEEDBACK_EVENT_SCHEMA,
    },
    securitySchemes: {
      basic: { type: 'http', scheme: 'basic' },
      session: { type: 'apiKey', in: 'cookie', name: 'cw_session' },
    },
  },
  security: [{ basic: [] }, { session: [] }],
  webhooks: {
    feedbackEvent: {
      post: {
        summary:
          'A feedback event, POSTed by the node to each subscriber that wants it (one at a time, in seq order; ' +
          'retried with backoff on a network error, 408, 429 or 5xx)',
        security: [{ basic: [] }, {}],
        requestBody: { required: true, content: json(ref('FeedbackEvent')) },
        responses: { '2XX': { description: 'delivered' } },
      },
    },
  },
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
          'callHistory, callRecords (the stored call detail records, newest first, each with its media totals and ' +
          '`mediaPath`: codecs each side sent, relay ports per RTP session), searchHistory, routingZones, media, turn ' +
          'where the node provides them',
        parameters: [
          {
            name: 'section',
            in: 'path',
            required: true,
            schema: { enum: STATUS_SECTIONS },
          },
        ],
        responses: { ...ok('the section'), 404: { description: 'no such section on this node' } },
      },
    },
    '/api/v1/ports': {
      get: { summary: 'The port plan (same document as `crossway ports --format json`)', responses: ok('plan') },
    },
    '/api/v1/alarms': { get: { summary: 'Raised alarms', responses: ok('alarms', { type: 'array' }) } },
    '/api/v1/config': {
      get: {
        summary: 'The running configuration (secrets as ********)',
        responses: ok('configuration', ref('RunningConfig')),
      },
      put: {
        summary: 'Replace the configuration (read-write); persisted in the node store and audited',
        requestBody: { content: json(ref('Config')) },
        responses: { ...ok('saved', changeResult), 400: { description: 'refused', content: json(issues) } },
      },
      patch: {
        summary: 'Change part of the configuration with a JSON merge patch (RFC 7396) (read-write)',
        requestBody: {
          content: { 'application/merge-patch+json': { schema: ref('ConfigPatch') }, ...json(ref('ConfigPatch')) },
        },
        responses: { ...ok('saved', changeResult), 400: { description: 'refused', content: json(issues) } },
      },
    },
    '/api/v1/config/validate': {
      post: {
        summary: 'Validate a whole configuration without saving it',
        requestBody: { content: json(ref('Config')) },
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
              events: { type: 'array', items: { enum: feedbackEventSchema.options }, description: 'empty: all' },
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
    '/api/v1/registrations/h323/{endpointIdentifier}': {
      delete: {
        summary:
          'End an H.323 registration (read-write): the gatekeeper sends the endpoint a URQ (H.225.0 §7.10.2, reason ' +
          'maintenance), the registration leaves the `registrations` listing and count and the store, an ' +
          '`unregistration` event (reason `administrator`) goes out, and the audit log records `registration-remove`',
        parameters: [
          {
            name: 'endpointIdentifier',
            in: 'path',
            required: true,
            description: 'as the `registrations` status section lists it (`protocol: h323`)',
            schema: { type: 'string', minLength: 1, maxLength: 100 },
          },
        ],
        responses: {
          ...ok('removed', {
            type: 'object',
            required: ['removed'],
            properties: {
              removed: {
                type: 'object',
                required: ['protocol', 'endpointIdentifier', 'aliases'],
                properties: {
                  protocol: { const: 'h323' },
                  endpointIdentifier: { type: 'string' },
                  aliases: {
                    type: 'array',
                    items: { type: 'string' },
                    description: '`kind:value`, e.g. `h323-ID:alice`',
                  },
                },
              },
            },
          }),
          404: { description: 'no such registration on this node (or the node runs no H.323 gatekeeper)' },
        },
      },
    },
    '/metrics': {
      get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text exposition format' } } },
    },
  },
} as const;
