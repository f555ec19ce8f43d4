// Runs the official JavaScript Kubernetes client (@kubernetes/client-node) against a kapi server.
//
// Usage: KUBECONFIG=... node main.mjs crud|watch
//
// Every passed check prints one line "ok <subcommand>: <check>"; the first failed check prints
// "FAIL <subcommand>: <what>" on stderr and exits 1, so the pytest wrapper can show exactly where
// client and server disagreed. Each run uses namespaces and CRD groups named with a random suffix,
// so both subcommands (and repeated runs) can share one server.
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';

const SUFFIX = randomBytes(4).toString('hex');
const WAIT_MS = 20000;
let subcommand = '?';

class CheckFailed extends Error {}

/** Prints one passed check. */
function ok(what) {
    console.log(`ok ${subcommand}: ${what}`);
}

/** Fails the run with a message that names what was expected and what came back. */
function fail(what) {
    throw new CheckFailed(what);
}

function assert(cond, what, detail) {
    if (!cond) {
        fail(detail === undefined ? what : `${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
    }
}

/** JSON with object keys sorted: map key order carries no meaning in Kubernetes objects. */
function canonical(value) {
    return JSON.stringify(value, (_key, v) => (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v));
}

function assertEqual(actual, expected, what) {
    const a = canonical(actual);
    const e = canonical(expected);
    if (a !== e) {
        fail(`${what}: expected ${e}, got ${a}`);
    }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a truthy value; fails with `what` after WAIT_MS. */
async function waitFor(what, probe, timeoutMs = WAIT_MS) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            last = await probe();
            if (last) {
                return last;
            }
        } catch (err) {
            last = err;
        }
        if (Date.now() > deadline) {
            fail(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
        }
        await sleep(100);
    }
}

/** The server's Status body of an ApiException, parsed whether the client kept it as text or as an object. */
function statusBody(err) {
    let body = err.body;
    if (typeof body === 'string') {
        try {
            body = JSON.parse(body);
        } catch {
            // keep the text
        }
    }
    return body;
}

/**
 * Awaits a call that must fail with HTTP `code` (and Status `reason` if given): the client must surface the
 * server's error as an ApiException carrying the code and the Status body.
 */
async function expectError(what, call, code, reason) {
    let result;
    try {
        result = await call();
    } catch (err) {
        if (!(err instanceof k8s.ApiException)) {
            fail(`${what}: expected ApiException ${code}, got ${err && err.stack ? err.stack : err}`);
        }
        const body = statusBody(err);
        assertEqual(err.code, code, `${what}: HTTP code (body ${JSON.stringify(body)})`);
        if (reason !== undefined) {
            assert(body && body.kind === 'Status', `${what}: error body is not a Status`, body);
            assertEqual(body.reason, reason, `${what}: Status reason`);
            assertEqual(body.code, code, `${what}: Status code`);
        }
        return body;
    }
    fail(`${what}: expected HTTP ${code}, the call succeeded with ${JSON.stringify(result)}`);
}

/** Options that make a patch call send the given Content-Type: client-node 1.x defaults to JSON patch. */
function patchAs(strategy) {
    return k8s.setHeaderOptions('Content-Type', strategy);
}

const MERGE = patchAs(k8s.PatchStrategy.MergePatch);
const JSONPATCH = patchAs(k8s.PatchStrategy.JsonPatch);

function b64(text) {
    return Buffer.from(text, 'utf8').toString('base64');
}

function kubeConfig() {
    const kc = new k8s.KubeConfig();
    kc.loadFromDefault();
    const cluster = kc.getCurrentCluster();
    assert(cluster && cluster.server, 'kubeconfig from KUBECONFIG has a current cluster with a server');
    return kc;
}

// ---------------------------------------------------------------------------------------------------------
// crud

async function createNamespace(core, name, labels) {
    const ns = await core.createNamespace({ body: { metadata: { name, labels } } });
    assertEqual(ns.metadata.name, name, 'created namespace name');
    return ns;
}

/** Deletes a namespace and waits until reading it gives 404 (kapi may keep it Terminating for a moment). */
async function deleteNamespace(core, name) {
    await core.deleteNamespace({ name });
    await waitFor(`namespace ${name} to be gone`, async () => {
        try {
            const ns = await core.readNamespace({ name });
            assert(ns.metadata.deletionTimestamp || ns.status?.phase === 'Terminating',
                'namespace read after delete is Terminating', ns.status);
            return false;
        } catch (err) {
            if (err instanceof k8s.ApiException && err.code === 404) {
                return true;
            }
            throw err;
        }
    });
}

async function crudNamespace(core, ns) {
    await createNamespace(core, ns, { 'kapi-client': 'node', run: SUFFIX });
    ok('namespace create');
    const read = await core.readNamespace({ name: ns });
    assertEqual(read.metadata.labels.run, SUFFIX, 'namespace label');
    assert(read.metadata.uid && read.metadata.resourceVersion, 'namespace has uid and resourceVersion', read.metadata);
    assert(read.metadata.creationTimestamp instanceof Date, 'creationTimestamp deserialized to a Date',
        String(read.metadata.creationTimestamp));
    ok('namespace read');
    const list = await core.listNamespace({ labelSelector: `run=${SUFFIX},kapi-client=node` });
    assertEqual(list.items.map((n) => n.metadata.name), [ns], 'namespaces listed by label');
    assert(list.metadata.resourceVersion, 'namespace list has a resourceVersion', list.metadata);
    ok('namespace list labelSelector');
}

async function crudConfigMap(core, ns) {
    const name = 'cm-main';
    const labels = { app: 'node-client', tier: 'config' };
    const created = await core.createNamespacedConfigMap({
        namespace: ns, body: { metadata: { name, labels }, data: { a: '1' } },
    });
    assertEqual(created.data, { a: '1' }, 'created configmap data');
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cm-other', labels: { app: 'other' } } } });
    await expectError('create of an existing configmap', () => core.createNamespacedConfigMap({
        namespace: ns, body: { metadata: { name }, data: {} },
    }), 409, 'AlreadyExists');
    ok('configmap create (and AlreadyExists 409)');

    const read = await core.readNamespacedConfigMap({ name, namespace: ns });
    assertEqual(read.data, { a: '1' }, 'read configmap data');
    assertEqual(read.metadata.uid, created.metadata.uid, 'read configmap uid');
    ok('configmap read');

    const list = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app=node-client' });
    assertEqual(list.items.map((c) => c.metadata.name), [name], 'configmaps listed by app=node-client');
    const notOther = await core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'app!=node-client,app' });
    assertEqual(notOther.items.map((c) => c.metadata.name), ['cm-other'], 'configmaps listed by app!=node-client,app');
    ok('configmap list labelSelector');

    const stale = read;
    const changed = { ...read, data: { ...read.data, b: '2' } };
    const replaced = await core.replaceNamespacedConfigMap({ name, namespace: ns, body: changed });
    assertEqual(replaced.data, { a: '1', b: '2' }, 'replaced configmap data');
    assert(replaced.metadata.resourceVersion !== stale.metadata.resourceVersion, 'replace changes resourceVersion');
    ok('configmap replace');

    const conflict = await expectError('replace with a stale resourceVersion', () => core.replaceNamespacedConfigMap({
        name, namespace: ns, body: { ...stale, data: { stale: 'yes' } },
    }), 409, 'Conflict');
    assert(/modified/i.test(conflict.message || ''), 'conflict message mentions the object was modified', conflict.message);
    ok('configmap replace stale resourceVersion 409 Conflict');

    const merged = await core.patchNamespacedConfigMap(
        { name, namespace: ns, body: { data: { a: null, c: '3' }, metadata: { annotations: { merged: 'yes' } } } }, MERGE);
    assertEqual(merged.data, { b: '2', c: '3' }, 'merge-patched configmap data');
    assertEqual(merged.metadata.annotations, { merged: 'yes' }, 'merge-patched annotations');
    ok('configmap merge patch');

    const jsonPatched = await core.patchNamespacedConfigMap({
        name, namespace: ns, body: [
            { op: 'test', path: '/data/c', value: '3' },
            { op: 'add', path: '/data/d', value: '4' },
            { op: 'remove', path: '/data/b' },
            { op: 'replace', path: '/metadata/annotations/merged', value: 'json' },
        ],
    }, JSONPATCH);
    assertEqual(jsonPatched.data, { c: '3', d: '4' }, 'json-patched configmap data');
    assertEqual(jsonPatched.metadata.annotations, { merged: 'json' }, 'json-patched annotations');
    // client-node 1.x's default patch Content-Type is JSON patch: a call without options must work the same way.
    const defaultPatched = await core.patchNamespacedConfigMap({
        name, namespace: ns, body: [{ op: 'add', path: '/data/e', value: '5' }],
    });
    assertEqual(defaultPatched.data, { c: '3', d: '4', e: '5' }, 'default (JSON) patched configmap data');
    await expectError('json patch whose test op fails', () => core.patchNamespacedConfigMap({
        name, namespace: ns, body: [{ op: 'test', path: '/data/c', value: 'not-3' }, { op: 'add', path: '/data/x', value: 'x' }],
    }, JSONPATCH), 422);
    ok('configmap json patch (and failed test op 422)');

    const deleted = await core.deleteNamespacedConfigMap({ name, namespace: ns });
    assertEqual([deleted.kind, deleted.status, deleted.details?.name, deleted.details?.uid],
        ['Status', 'Success', name, created.metadata.uid], 'configmap delete answer (a Success Status)');
    await expectError('read after delete', () => core.readNamespacedConfigMap({ name, namespace: ns }), 404, 'NotFound');
    await expectError('delete of a missing configmap', () => core.deleteNamespacedConfigMap({ name, namespace: ns }),
        404, 'NotFound');
    ok('configmap delete, read 404 NotFound');
}

async function crudSecret(core, ns) {
    const name = 'secret-main';
    const created = await core.createNamespacedSecret({
        namespace: ns,
        body: {
            metadata: { name, labels: { app: 'node-client' } },
            type: 'Opaque',
            data: { user: b64('admin') },
            stringData: { password: 's3cret' },
        },
    });
    assertEqual(created.type, 'Opaque', 'created secret type');
    ok('secret create');

    const read = await core.readNamespacedSecret({ name, namespace: ns });
    assertEqual(read.data, { password: b64('s3cret'), user: b64('admin') }, 'secret data (stringData merged, base64)');
    assert(read.stringData === undefined, 'stringData is write-only', read.stringData);
    ok('secret read (stringData folded into data)');

    const list = await core.listNamespacedSecret({ namespace: ns, labelSelector: 'app=node-client' });
    assertEqual(list.items.map((s) => s.metadata.name), [name], 'secrets listed by label');
    ok('secret list labelSelector');

    const replaced = await core.replaceNamespacedSecret({
        name, namespace: ns, body: { ...read, data: { ...read.data, token: b64('t0ken') } },
    });
    assertEqual(Object.keys(replaced.data).sort(), ['password', 'token', 'user'], 'replaced secret keys');
    ok('secret replace');

    await expectError('secret replace with a stale resourceVersion', () => core.replaceNamespacedSecret({
        name, namespace: ns, body: { ...read, data: {} },
    }), 409, 'Conflict');
    ok('secret replace stale resourceVersion 409 Conflict');

    const merged = await core.patchNamespacedSecret(
        { name, namespace: ns, body: { data: { token: null }, stringData: { extra: 'x' } } }, MERGE);
    assertEqual(merged.data, { extra: b64('x'), password: b64('s3cret'), user: b64('admin') }, 'merge-patched secret data');
    ok('secret merge patch');

    const jsonPatched = await core.patchNamespacedSecret({
        name, namespace: ns, body: [{ op: 'remove', path: '/data/extra' }, { op: 'add', path: '/metadata/labels/patched', value: 'json' }],
    }, JSONPATCH);
    assertEqual(Object.keys(jsonPatched.data).sort(), ['password', 'user'], 'json-patched secret keys');
    assertEqual(jsonPatched.metadata.labels, { app: 'node-client', patched: 'json' }, 'json-patched secret labels');
    ok('secret json patch');

    await core.deleteNamespacedSecret({ name, namespace: ns });
    await expectError('secret read after delete', () => core.readNamespacedSecret({ name, namespace: ns }), 404, 'NotFound');
    ok('secret delete, read 404 NotFound');
}

function deploymentBody(name) {
    return {
        metadata: { name, labels: { app: name, 'kapi-client': 'node' } },
        spec: {
            replicas: 2,
            selector: { matchLabels: { app: name } },
            template: {
                metadata: { labels: { app: name } },
                spec: { containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }] },
            },
        },
    };
}

async function crudDeployment(apps, ns) {
    const name = 'web';
    const created = await apps.createNamespacedDeployment({ namespace: ns, body: deploymentBody(name) });
    assertEqual(created.spec.replicas, 2, 'created deployment replicas');
    assertEqual(created.metadata.generation, 1, 'created deployment generation');
    ok('deployment create');

    const read = await apps.readNamespacedDeployment({ name, namespace: ns });
    assertEqual(read.spec.template.spec.containers[0].image, 'nginx:1.27', 'deployment image');
    assertEqual(read.spec.strategy?.type, 'RollingUpdate', 'defaulted spec.strategy.type');
    assertEqual(read.spec.revisionHistoryLimit, 10, 'defaulted spec.revisionHistoryLimit');
    ok('deployment read (defaults applied)');

    await apps.createNamespacedDeployment({ namespace: ns, body: { ...deploymentBody('other'), metadata: { name: 'other', labels: { app: 'other' } } } });
    const list = await apps.listNamespacedDeployment({ namespace: ns, labelSelector: 'kapi-client=node' });
    assertEqual(list.items.map((d) => d.metadata.name), [name], 'deployments listed by label');
    ok('deployment list labelSelector');

    const stale = read;
    const replaced = await apps.replaceNamespacedDeployment({
        name, namespace: ns, body: { ...read, spec: { ...read.spec, replicas: 3 } },
    });
    assertEqual(replaced.spec.replicas, 3, 'replaced deployment replicas');
    assertEqual(replaced.metadata.generation, 2, 'generation after a spec change');
    ok('deployment replace (generation bumped)');

    await expectError('deployment replace with a stale resourceVersion', () => apps.replaceNamespacedDeployment({
        name, namespace: ns, body: { ...stale, spec: { ...stale.spec, replicas: 7 } },
    }), 409, 'Conflict');
    ok('deployment replace stale resourceVersion 409 Conflict');

    const merged = await apps.patchNamespacedDeployment(
        { name, namespace: ns, body: { spec: { replicas: 4 }, metadata: { annotations: { note: 'merged' } } } }, MERGE);
    assertEqual(merged.spec.replicas, 4, 'merge-patched replicas');
    assertEqual(merged.metadata.annotations?.note, 'merged', 'merge-patched annotation');
    ok('deployment merge patch');

    const jsonPatched = await apps.patchNamespacedDeployment({
        name, namespace: ns, body: [
            { op: 'replace', path: '/spec/replicas', value: 5 },
            { op: 'add', path: '/spec/template/spec/containers/0/env', value: [{ name: 'MODE', value: 'json' }] },
        ],
    }, JSONPATCH);
    assertEqual(jsonPatched.spec.replicas, 5, 'json-patched replicas');
    assertEqual(jsonPatched.spec.template.spec.containers[0].env, [{ name: 'MODE', value: 'json' }], 'json-patched env');
    ok('deployment json patch');

    const status = await apps.readNamespacedDeploymentStatus({ name, namespace: ns });
    assertEqual(status.kind, 'Deployment', 'status subresource returns the whole Deployment');
    assertEqual(status.spec.replicas, 5, 'status read shows spec');
    ok('deployment status read');

    const generation = jsonPatched.metadata.generation;
    const statusPatched = await apps.patchNamespacedDeploymentStatus({
        name, namespace: ns, body: {
            spec: { replicas: 99 },
            status: { observedGeneration: generation, replicas: 5, readyReplicas: 3, updatedReplicas: 5, availableReplicas: 3 },
        },
    }, MERGE);
    assertEqual(statusPatched.status.readyReplicas, 3, 'status-patched readyReplicas');
    assertEqual(statusPatched.spec.replicas, 5, 'a status patch does not change spec');
    const after = await apps.readNamespacedDeployment({ name, namespace: ns });
    assertEqual([after.status?.readyReplicas, after.status?.observedGeneration, after.spec.replicas, after.metadata.generation],
        [3, generation, 5, generation], 'deployment after the status patch (status kept, spec and generation untouched)');
    const jsonStatus = await apps.patchNamespacedDeploymentStatus({
        name, namespace: ns, body: [{ op: 'replace', path: '/status/readyReplicas', value: 5 }],
    }, JSONPATCH);
    assertEqual(jsonStatus.status.readyReplicas, 5, 'json-patched status readyReplicas');
    ok('deployment status patch (merge and json; spec ignored)');

    await apps.deleteNamespacedDeployment({ name, namespace: ns });
    await expectError('deployment read after delete', () => apps.readNamespacedDeployment({ name, namespace: ns }),
        404, 'NotFound');
    ok('deployment delete, read 404 NotFound');
}

async function crudCustomObjects(kc, ns) {
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const group = `n${SUFFIX}.nodeclient.kapi.test`;
    const version = 'v1';
    const plural = 'widgets';
    const crdName = `${plural}.${group}`;
    await ext.createCustomResourceDefinition({
        body: {
            metadata: { name: crdName },
            spec: {
                group,
                scope: 'Namespaced',
                names: { plural, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
                versions: [{
                    name: version, served: true, storage: true,
                    subresources: { status: {} },
                    schema: {
                        openAPIV3Schema: {
                            type: 'object',
                            properties: {
                                spec: {
                                    type: 'object',
                                    required: ['size'],
                                    properties: { size: { type: 'integer', minimum: 1 }, color: { type: 'string' } },
                                },
                                status: { type: 'object', properties: { ready: { type: 'boolean' } } },
                            },
                        },
                    },
                }],
            },
        },
    });
    ok('crd create');
    await waitFor(`CRD ${crdName} Established`, async () => {
        const crd = await ext.readCustomResourceDefinition({ name: crdName });
        return (crd.status?.conditions || []).some((c) => c.type === 'Established' && c.status === 'True');
    });
    ok('crd Established');

    const base = { group, version, namespace: ns, plural };
    const body = (name, spec, labels) => ({ apiVersion: `${group}/${version}`, kind: 'Widget', metadata: { name, labels }, spec });
    const created = await custom.createNamespacedCustomObject({ ...base, body: body('w1', { size: 1, color: 'red' }, { app: 'node-client' }) });
    assertEqual(created.spec, { color: 'red', size: 1 }, 'created widget spec');
    await custom.createNamespacedCustomObject({ ...base, body: body('w2', { size: 2 }, { app: 'other' }) });
    await expectError('widget violating the schema', () => custom.createNamespacedCustomObject({
        ...base, body: body('bad', { size: 'big' }),
    }), 422, 'Invalid');
    ok('custom object create (and schema violation 422 Invalid)');

    const read = await custom.getNamespacedCustomObject({ ...base, name: 'w1' });
    assertEqual([read.kind, read.spec.color, read.metadata.uid], ['Widget', 'red', created.metadata.uid], 'read widget');
    ok('custom object read');

    const list = await custom.listNamespacedCustomObject({ ...base, labelSelector: 'app=node-client' });
    assertEqual([list.kind, list.items.map((w) => w.metadata.name)], ['WidgetList', ['w1']], 'widgets listed by label');
    ok('custom object list labelSelector');

    const replaced = await custom.replaceNamespacedCustomObject({
        ...base, name: 'w1', body: { ...read, spec: { size: 3, color: 'blue' } },
    });
    assertEqual(replaced.spec, { color: 'blue', size: 3 }, 'replaced widget spec');
    await expectError('widget replace with a stale resourceVersion', () => custom.replaceNamespacedCustomObject({
        ...base, name: 'w1', body: { ...read, spec: { size: 9 } },
    }), 409, 'Conflict');
    ok('custom object replace (stale resourceVersion 409 Conflict)');

    const merged = await custom.patchNamespacedCustomObject({ ...base, name: 'w1', body: { spec: { color: null, size: 4 } } }, MERGE);
    assertEqual(merged.spec, { size: 4 }, 'merge-patched widget spec');
    const jsonPatched = await custom.patchNamespacedCustomObject({
        ...base, name: 'w1', body: [{ op: 'add', path: '/spec/color', value: 'green' }],
    }, JSONPATCH);
    assertEqual(jsonPatched.spec, { color: 'green', size: 4 }, 'json-patched widget spec');
    ok('custom object merge and json patch');

    const statusPatched = await custom.patchNamespacedCustomObjectStatus({
        ...base, name: 'w1', body: { status: { ready: true }, spec: { size: 100 } },
    }, MERGE);
    assertEqual([statusPatched.status, statusPatched.spec.size], [{ ready: true }, 4], 'widget after a status patch');
    const statusRead = await custom.getNamespacedCustomObjectStatus({ ...base, name: 'w1' });
    assertEqual(statusRead.status, { ready: true }, 'widget status read');
    ok('custom object status subresource');

    await custom.deleteNamespacedCustomObject({ ...base, name: 'w1' });
    await expectError('widget read after delete', () => custom.getNamespacedCustomObject({ ...base, name: 'w1' }), 404, 'NotFound');
    ok('custom object delete, read 404 NotFound');
    return { ext, crdName, group, version };
}

async function genericObjectApi(kc, ns, crd) {
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const specs = [
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'generic-cm', namespace: ns }, data: { via: 'KubernetesObjectApi' } },
        { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'generic-deploy', namespace: ns }, spec: deploymentBody('generic-deploy').spec },
        { apiVersion: `${crd.group}/${crd.version}`, kind: 'Widget', metadata: { name: 'generic-widget', namespace: ns }, spec: { size: 7 } },
    ];
    for (const spec of specs) {
        const header = { apiVersion: spec.apiVersion, kind: spec.kind, metadata: { name: spec.metadata.name, namespace: ns } };
        const created = await objects.create(spec);
        assertEqual([created.kind, created.metadata.name], [spec.kind, spec.metadata.name], `generic create ${spec.kind}`);
        const read = await objects.read(header);
        assertEqual(read.metadata.uid, created.metadata.uid, `generic read ${spec.kind} uid`);
        const listed = await objects.list(spec.apiVersion, spec.kind, ns);
        assert(listed.items.some((o) => o.metadata.name === spec.metadata.name), `generic list ${spec.kind} has the object`,
            listed.items.map((o) => o.metadata.name));
        await objects.delete(header);
        await expectError(`generic read ${spec.kind} after delete`, () => objects.read(header), 404, 'NotFound');
        ok(`generic KubernetesObjectApi create/read/list/delete ${spec.kind}`);
    }

    // Server-side apply through the generic API: client-node sends the object as JSON with the
    // application/apply-patch+yaml Content-Type (JSON is YAML).
    const applied = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'generic-applied', namespace: ns }, data: { a: '1' } };
    const header = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'generic-applied', namespace: ns } };
    const first = await objects.patch(applied, undefined, undefined, 'node-client', true, k8s.PatchStrategy.ServerSideApply);
    assertEqual(first.data, { a: '1' }, 'server-side apply creates');
    const second = await objects.patch({ ...applied, data: { b: '2' } }, undefined, undefined, 'node-client', true,
        k8s.PatchStrategy.ServerSideApply);
    assertEqual(second.data, { b: '2' }, 'server-side apply drops the field the manager no longer applies');
    const managers = (second.metadata.managedFields || []).map((m) => `${m.manager}/${m.operation}`);
    assertEqual(managers, ['node-client/Apply'], 'managedFields after two applies');
    await objects.delete(header);
    ok('generic KubernetesObjectApi server-side apply ConfigMap');
}

async function runCrud(kc) {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const ns = `node-crud-${SUFFIX}`;
    await crudNamespace(core, ns);
    await crudConfigMap(core, ns);
    await crudSecret(core, ns);
    await crudDeployment(apps, ns);
    const crd = await crudCustomObjects(kc, ns);
    await genericObjectApi(kc, ns, crd);
    await crd.ext.deleteCustomResourceDefinition({ name: crd.crdName });
    await waitFor(`CRD ${crd.crdName} to be gone`, async () => {
        try {
            await crd.ext.readCustomResourceDefinition({ name: crd.crdName });
            return false;
        } catch (err) {
            return err instanceof k8s.ApiException && err.code === 404;
        }
    });
    ok('crd delete');
    await deleteNamespace(core, ns);
    ok('namespace delete, read 404 NotFound');
}

// ---------------------------------------------------------------------------------------------------------
// watch

/**
 * Starts a Watch and gathers its events and its done callback, so checks can wait on both.
 * Watch.watch resolves once the response headers arrived (or the request failed).
 */
async function startWatch(kc, path, params) {
    const state = { events: [], done: false, doneErr: undefined };
    const watch = new k8s.Watch(kc);
    state.controller = await watch.watch(path, params,
        (type, obj) => state.events.push({ type, obj }),
        (err) => {
            state.done = true;
            state.doneErr = err;
        });
    return state;
}

async function watchOrder(kc, core, ns) {
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    const start = await core.listNamespacedConfigMap({ namespace: ns });
    const w = await startWatch(kc, path, { resourceVersion: start.metadata.resourceVersion, allowWatchBookmarks: false });
    assert(!w.done, 'watch is open after the response headers', w.doneErr && String(w.doneErr));
    ok('watch opened');

    const name = 'watched';
    const created = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name }, data: { step: 'created' } } });
    const updated = await core.replaceNamespacedConfigMap({ name, namespace: ns, body: { ...created, data: { step: 'updated' } } });
    await core.deleteNamespacedConfigMap({ name, namespace: ns });
    await waitFor('three watch events', () => w.events.length >= 3);
    await sleep(200);
    const seen = w.events.map((e) => [e.type, e.obj.metadata?.name, e.obj.data?.step]);
    assertEqual(seen, [['ADDED', name, 'created'], ['MODIFIED', name, 'updated'], ['DELETED', name, 'updated']], 'watch events');
    assertEqual(w.events[0].obj.metadata.resourceVersion, created.metadata.resourceVersion, 'ADDED resourceVersion');
    assertEqual(w.events[1].obj.metadata.resourceVersion, updated.metadata.resourceVersion, 'MODIFIED resourceVersion');
    assert(w.events[2].obj.metadata.resourceVersion !== updated.metadata.resourceVersion,
        'DELETED carries a new resourceVersion', w.events[2].obj.metadata);
    ok('watch ADDED, MODIFIED, DELETED in order');

    w.controller.abort();
    await waitFor('done callback after abort', () => w.done);
    ok('watch aborted, done callback called');
    return start.metadata.resourceVersion;
}

async function watchTooOld(kc, core, ns, oldRv) {
    // The server keeps only --watch-event-window 20 past events: 25 writes push oldRv out of the window.
    const name = 'churn';
    let cm = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name }, data: { n: '0' } } });
    for (let i = 1; i <= 25; i++) {
        cm = await core.replaceNamespacedConfigMap({ name, namespace: ns, body: { ...cm, data: { n: String(i) } } });
    }
    ok('made 26 writes (more than the watch event window)');

    const path = `/api/v1/namespaces/${ns}/configmaps`;
    const w = await startWatch(kc, path, { resourceVersion: oldRv });
    await waitFor('an ERROR event or the done callback for a too-old resourceVersion', () => w.events.length > 0 || w.done);
    if (w.events.length === 0) {
        // The server refused the request itself (a non-200 answer): client-node reports it via done(err).
        fail(`watch from a too-old resourceVersion: expected HTTP 200 with an ERROR event (Status 410 Expired), `
            + `got done(${w.doneErr && `statusCode=${w.doneErr.statusCode} ${w.doneErr.message}`})`);
    }
    const first = w.events[0];
    assertEqual(first.type, 'ERROR', `first event type for a too-old resourceVersion (object ${JSON.stringify(first.obj)})`);
    assertEqual([first.obj.kind, first.obj.apiVersion, first.obj.status, first.obj.code, first.obj.reason],
        ['Status', 'v1', 'Failure', 410, 'Expired'], 'ERROR event object');
    ok('watch too-old resourceVersion: ERROR event, Status 410 Expired');
    await waitFor('the server to end the stream after the ERROR event', () => w.done);
    assert(!w.doneErr, 'the stream ends cleanly after the ERROR event', w.doneErr && String(w.doneErr));
    assertEqual(w.events.length, 1, 'only the ERROR event is sent');
    ok('watch stream closed after the 410 ERROR event, done callback without error');

    // A watch from the current resourceVersion works again and sees the next change.
    const w2 = await startWatch(kc, path, { resourceVersion: cm.metadata.resourceVersion });
    await core.patchNamespacedConfigMap({ name, namespace: ns, body: { data: { n: 'last' } } }, MERGE);
    await waitFor('MODIFIED after rewatching from a fresh resourceVersion', () => w2.events.length >= 1);
    assertEqual([w2.events[0].type, w2.events[0].obj.data.n], ['MODIFIED', 'last'], 'event after rewatch');
    w2.controller.abort();
    ok('rewatch from a fresh resourceVersion');
}

async function informer(kc, core, ns) {
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    const labelSelector = 'informed=yes';
    const labels = { informed: 'yes' };
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'inf-pre', labels }, data: { v: '0' } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'inf-ignored' }, data: { v: 'x' } } });

    const inf = k8s.makeInformer(kc, path, () => core.listNamespacedConfigMap({ namespace: ns, labelSelector }), labelSelector);
    const seen = { add: [], update: [], delete: [], error: [] };
    inf.on(k8s.ADD, (o) => seen.add.push(o.metadata.name));
    inf.on(k8s.UPDATE, (o) => seen.update.push(`${o.metadata.name}=${o.data?.v}`));
    inf.on(k8s.DELETE, (o) => seen.delete.push(o.metadata.name));
    inf.on(k8s.ERROR, (err) => seen.error.push(String(err && (err.stack || err.message) || err)));
    await inf.start();
    await waitFor('informer add for the pre-existing configmap', () => seen.add.includes('inf-pre'));
    assertEqual(inf.list(ns).map((o) => o.metadata.name), ['inf-pre'], 'informer cache after the initial list');
    ok('informer started, initial list delivered as add');

    for (const n of ['inf-a', 'inf-b', 'inf-c']) {
        await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: n, labels }, data: { v: '1' } } });
    }
    await core.patchNamespacedConfigMap({ name: 'inf-b', namespace: ns, body: { data: { v: '2' } } }, MERGE);
    await core.deleteNamespacedConfigMap({ name: 'inf-c', namespace: ns });
    await core.patchNamespacedConfigMap({ name: 'inf-ignored', namespace: ns, body: { data: { v: 'y' } } }, MERGE);
    await waitFor('informer handlers for the batch', () => seen.delete.includes('inf-c') && seen.update.includes('inf-b=2'));
    assertEqual(seen.add, ['inf-pre', 'inf-a', 'inf-b', 'inf-c'], 'informer add handler calls');
    assertEqual(seen.update, ['inf-b=2'], 'informer update handler calls');
    assertEqual(seen.delete, ['inf-c'], 'informer delete handler calls');
    ok('informer add/update/delete handlers called');

    const cached = inf.list(ns).map((o) => `${o.metadata.name}=${o.data?.v}`).sort();
    assertEqual(cached, ['inf-a=1', 'inf-b=2', 'inf-pre=0'], 'informer cache list() after the batch');
    assertEqual(inf.get('inf-b', ns)?.data?.v, '2', 'informer cache get()');
    assert(inf.get('inf-c', ns) === undefined, 'deleted object gone from the cache');
    assertEqual(seen.error, [], 'informer error handler calls');
    ok('informer cache list() and get() match the server');

    await inf.stop();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'inf-after-stop', labels } } });
    await sleep(700);
    assert(!seen.add.includes('inf-after-stop'), 'a stopped informer gets no events', seen.add);
    ok('informer stopped');
}

async function runWatch(kc) {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const ns = `node-watch-${SUFFIX}`;
    await createNamespace(core, ns, { 'kapi-client': 'node-watch' });
    ok('namespace create');
    const oldRv = await watchOrder(kc, core, ns);
    await watchTooOld(kc, core, ns, oldRv);
    await informer(kc, core, ns);
    await deleteNamespace(core, ns);
    ok('namespace delete');
}

// ---------------------------------------------------------------------------------------------------------

const COMMANDS = { crud: runCrud, watch: runWatch };

async function main() {
    subcommand = process.argv[2];
    const run = COMMANDS[subcommand];
    if (!run) {
        console.error(`usage: node main.mjs ${Object.keys(COMMANDS).join('|')}`);
        process.exit(2);
    }
    const watchdog = setTimeout(() => {
        console.error(`FAIL ${subcommand}: did not finish within 120 s`);
        process.exit(1);
    }, 120000);
    try {
        await run(kubeConfig());
    } catch (err) {
        const text = err instanceof CheckFailed ? err.message : (err && err.stack) || String(err);
        console.error(`FAIL ${subcommand}: ${text}`);
        process.exit(1);
    }
    clearTimeout(watchdog);
    console.log(`PASSED ${subcommand}`);
    // Keep-alive sockets and aborted watches may hold the event loop open: the verdict is already printed.
    process.exit(0);
}

main();
