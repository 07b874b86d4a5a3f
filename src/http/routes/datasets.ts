// /datasets — a tenant's own tables, defined as data: create, change additively, read, list, delete.
// The built-in webhook_events is listed for every tenant and cannot be changed. All tenant-scoped.
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  applyDataset,
  deleteDataset,
  findDataset,
  listDatasets,
  listDatasetVersions,
  type DatasetRow,
} from '../../datasets/datasets.repository.ts';
import { BUILT_IN_DATASETS, ColumnBody, DatasetBody, DefinitionError, normaliseDefinition, type DatasetSpec } from '../../datasets/definition.ts';
import { qualifiedTable } from '../../datasets/ddl.ts';
import { tenantSchema } from '../../datasets/identifiers.ts';
import { AppError } from '../../errors.ts';
import { InputFormatBody } from '../../ingest/csv/input-format.ts';
import { getDataset } from '../../ingest/datasets/index.ts';
import type { DatasetDef } from '../../ingest/datasets/types.ts';
import type { AppDeps } from '../app.ts';
import { errors } from '../schemas.ts';

const Timestamp = Type.String({ format: 'date-time' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const DatasetResponse = Type.Object({
  name: Type.String(),
  builtIn: Type.Boolean({ description: 'true for webhook_events, which every tenant has and nobody can change' }),
  version: Nullable(Type.Integer({ description: 'the definition version; each change adds one (null for a built-in dataset)' })),
  table: Type.String({ description: 'the table to query, schema-qualified and quoted' }),
  columns: Type.Array(ColumnBody),
  key: Nullable(Type.Array(Type.String())),
  format: Type.Object(InputFormatBody.properties, { description: "how the dataset's files are written where they differ from RFC 4180 (empty: every default)" }),
  createdAt: Nullable(Timestamp),
  updatedAt: Nullable(Timestamp),
});
const WriteResponse = Type.Composite([DatasetResponse, Type.Object({ changed: Type.Boolean({ description: 'false when the definition was already this one (the version stays)' }) })]);
const VersionsResponse = Type.Object({
  items: Type.Array(Type.Object({ version: Type.Integer(), columns: Type.Array(ColumnBody), key: Nullable(Type.Array(Type.String())), appliedSql: Type.Array(Type.String()), createdAt: Timestamp })),
});
const NameParams = Type.Object({ name: Type.String({ maxLength: 200, description: 'dataset name' }) });
type NameRoute = { Params: Static<typeof NameParams> };

/** The definition as normal form, or 400 invalid_dataset saying what is wrong. */
function checked(body: Static<typeof DatasetBody>, pathName?: string): DatasetSpec {
  try {
    return normaliseDefinition(body, pathName);
  } catch (err) {
    if (err instanceof DefinitionError) throw new AppError('invalid_dataset', err.message);
    throw err;
  }
}

export async function datasetRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const notFound = (name: string) => new AppError('not_found', `dataset ${JSON.stringify(name.slice(0, 80))} not found`);

  const createSchema = {
    tags: ['datasets'],
    summary: "Define a dataset: the service creates its table in the tenant's schema",
    body: DatasetBody,
    response: { 201: WriteResponse, ...errors(400, 401, 409) },
  };
  app.post<{ Body: Static<typeof DatasetBody> }>('/datasets', { schema: createSchema }, async (request, reply) => {
    const spec = checked(request.body);
    const { row } = await applyDataset(deps.db, request.tenant.id, spec, { createOnly: true });
    request.log.info({ dataset: spec.name, version: row.version }, 'dataset created');
    return reply.status(201).header('location', `/datasets/${spec.name}`).send({ ...presentRow(row), changed: true });
  });

  const putSchema = {
    tags: ['datasets'],
    summary: 'Create or change a dataset: additive changes only (ALTER TABLE); the same definition again changes nothing',
    params: NameParams,
    body: DatasetBody,
    response: { 200: WriteResponse, 201: WriteResponse, ...errors(400, 401, 409) },
  };
  app.put<NameRoute & { Body: Static<typeof DatasetBody> }>('/datasets/:name', { schema: putSchema }, async (request, reply) => {
    const spec = checked(request.body, request.params.name);
    const { outcome, row } = await applyDataset(deps.db, request.tenant.id, spec, { createOnly: false });
    if (outcome !== 'unchanged') request.log.info({ dataset: spec.name, version: row.version, outcome }, 'dataset applied');
    return reply.status(outcome === 'created' ? 201 : 200).send({ ...presentRow(row), changed: outcome !== 'unchanged' });
  });

  const listSchema = {
    tags: ['datasets'],
    summary: "The tenant's datasets and the built-in ones, by name",
    response: { 200: Type.Object({ items: Type.Array(DatasetResponse) }), ...errors(401) },
  };
  app.get('/datasets', { schema: listSchema }, async (request) => {
    const own = await listDatasets(deps.db, request.tenant.id);
    const builtIn = [...BUILT_IN_DATASETS].map((name) => presentBuiltIn(getDataset(name)!));
    return { items: [...builtIn, ...own.map(presentRow)] };
  });

  const oneSchema = { tags: ['datasets'], summary: 'One dataset', params: NameParams, response: { 200: DatasetResponse, ...errors(401, 404) } };
  app.get<NameRoute>('/datasets/:name', { schema: oneSchema }, async (request) => {
    const { name } = request.params;
    const builtIn = BUILT_IN_DATASETS.has(name) ? getDataset(name) : undefined;
    if (builtIn) return presentBuiltIn(builtIn);
    const row = await findDataset(deps.db, request.tenant.id, name);
    if (!row) throw notFound(name);
    return presentRow(row);
  });

  const versionsSchema = {
    tags: ['datasets'],
    summary: 'Every version of a dataset definition, oldest first, with the DDL each applied',
    params: NameParams,
    response: { 200: VersionsResponse, ...errors(401, 404) },
  };
  app.get<NameRoute>('/datasets/:name/versions', { schema: versionsSchema }, async (request) => {
    const versions = await listDatasetVersions(deps.db, request.tenant.id, request.params.name);
    if (versions.length === 0) throw notFound(request.params.name);
    return {
      items: versions.map((v) => {
        const spec = v.definition as DatasetSpec;
        return { version: v.version, columns: spec.columns, key: spec.key ?? null, appliedSql: v.applied_sql, createdAt: v.created_at.toISOString() };
      }),
    };
  });

  const deleteSchema = {
    tags: ['datasets'],
    summary: 'Delete a dataset and drop its table; refused while an unfinished upload uses it',
    params: NameParams,
    response: { 204: Type.Null(), ...errors(401, 404, 409) },
  };
  app.delete<NameRoute>('/datasets/:name', { schema: deleteSchema }, async (request, reply) => {
    const { name } = request.params;
    if (BUILT_IN_DATASETS.has(name)) throw new AppError('dataset_change_refused', `dataset "${name}" is built in and cannot be deleted`);
    if (!(await deleteDataset(deps.db, request.tenant.id, name))) throw notFound(name);
    request.log.info({ dataset: name }, 'dataset deleted');
    return reply.status(204).send();
  });
}

function presentRow(row: DatasetRow) {
  const spec = row.definition as DatasetSpec;
  return {
    name: row.name,
    builtIn: false,
    version: row.version,
    table: qualifiedTable(tenantSchema(row.tenant_id), row.name),
    columns: spec.columns,
    key: spec.key ?? null,
    format: spec.format ?? {},
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function presentBuiltIn(def: DatasetDef) {
  return {
    name: def.name,
    builtIn: true,
    version: null,
    table: def.table,
    columns: def.columns.map((c) => ({
      name: c.name,
      type: c.type,
      required: c.required ?? false,
      ...(c.maxLength !== undefined && { maxLength: c.maxLength }),
      ...(c.pattern && { pattern: c.pattern.source }),
    })),
    key: null,
    format: {},
    createdAt: null,
    updatedAt: null,
  };
}
