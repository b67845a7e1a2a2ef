import t from 'tap'
import { existsSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parse } from 'yaml'
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { buildApp } from '../../src/server/app.js'
import { configuredEngine } from '../../src/server/engine/create-engine.js'
import { loadConfig } from '../../src/server/config.js'
import { followsProductionRules } from '../helpers/gateway.js'
import {
  configMapData, dockerStages, exampleSecretData, filesUnder, k8sDocument, k8sDocuments, knownEnvNames,
  readText, readYaml, root, stringDataOf
} from './deploy-files.js'

/**
 * The Kubernetes manifests (SPEC §7, issue 5 item 4): every object is valid against the
 * Kubernetes schemas (kubernetes-models, offline), and the settings that only work
 * together agree with each other and with the gateway itself.
 */

interface Validatable { validate: () => void }
type Factory = (data: unknown) => Validatable

// One entry per apiVersion/kind the manifests may use; anything else fails the test.
/* eslint-disable @typescript-eslint/no-explicit-any -- the models type their input; the YAML is unknown until validated */
const MODELS: Record<string, Factory> = {
  'v1/ConfigMap': (data) => new ConfigMap(data as any),
  'v1/Namespace': (data) => new Namespace(data as any),
  'v1/Secret': (data) => new Secret(data as any),
  'v1/Service': (data) => new Service(data as any),
  'v1/ServiceAccount': (data) => new ServiceAccount(data as any),
  'apps/v1/Deployment': (data) => new Deployment(data as any),
  'policy/v1/PodDisruptionBudget': (data) => new PodDisruptionBudget(data as any),
  'autoscaling/v2/HorizontalPodAutoscaler': (data) => new HorizontalPodAutoscaler(data as any),
  'networking.k8s.io/v1/NetworkPolicy': (data) => new NetworkPolicy(data as any)
}
/* eslint-enable @typescript-eslint/no-explicit-any */

const KUSTOMIZATION = 'kustomize.config.k8s.io/v1beta1/Kustomization'

function validationError (apiVersion: string, kind: string, data: unknown): string | null {
  const factory = MODELS[`${apiVersion}/${kind}`]
  if (factory === undefined) return `no schema for ${apiVersion}/${kind}`
  try {
    factory(data).validate()
    return null
  } catch (err) {
    return (err as Error).message
  }
}

type DataOf<T extends abstract new (data: never) => unknown> = ConstructorParameters<T>[0]

const deployment = new Deployment(k8sDocument('k8s/base/deployment.yaml', 'Deployment') as DataOf<typeof Deployment>)
const podSpec = deployment.spec!.template.spec!
const container = podSpec.containers[0]!
const podLabels = deployment.spec!.template.metadata!.labels!
const service = new Service(k8sDocument('k8s/base/service.yaml', 'Service') as DataOf<typeof Service>)
const pdb = new PodDisruptionBudget(k8sDocument('k8s/base/pdb.yaml', 'PodDisruptionBudget') as DataOf<typeof PodDisruptionBudget>)
const hpa = new HorizontalPodAutoscaler(k8sDocument('k8s/base/hpa.yaml', 'HorizontalPodAutoscaler') as DataOf<typeof HorizontalPodAutoscaler>)
const networkPolicy = new NetworkPolicy(k8sDocument('k8s/base/networkpolicy.yaml', 'NetworkPolicy') as DataOf<typeof NetworkPolicy>)
const configMap = configMapData()
const secret = exampleSecretData()

/** A container port by number or by name, as a number. */
function resolvePort (port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort
}

function includesLabels (labels: Record<string, string> | undefined, selected: Record<string, string>): boolean {
  return labels !== undefined && Object.keys(labels).length > 0 &&
    Object.entries(labels).every(([key, value]) => selected[key] === value)
}

void t.test('every manifest under k8s/ is valid against the Kubernetes schemas', async (t) => {
  const documents = k8sDocuments()
  t.same(documents.map((document) => `${document.file} ${document.kind}/${document.name}`), [
    'k8s/base/configmap.yaml ConfigMap/realtime-gateway',
    'k8s/base/deployment.yaml Deployment/realtime-gateway',
    'k8s/base/hpa.yaml HorizontalPodAutoscaler/realtime-gateway',
    'k8s/base/kustomization.yaml Kustomization/',
    'k8s/base/networkpolicy.yaml NetworkPolicy/realtime-gateway',
    'k8s/base/pdb.yaml PodDisruptionBudget/realtime-gateway',
    'k8s/base/service.yaml Service/realtime-gateway',
    'k8s/base/serviceaccount.yaml ServiceAccount/realtime-gateway',
    'k8s/overlays/example/configmap-patch.yaml ConfigMap/realtime-gateway',
    'k8s/overlays/example/kustomization.yaml Kustomization/',
    'k8s/overlays/example/namespace.yaml Namespace/realtime',
    'k8s/overlays/example/secret.example.yaml Secret/realtime-gateway'
  ])
  for (const document of documents) {
    if (`${document.apiVersion}/${document.kind}` === KUSTOMIZATION) continue
    t.equal(validationError(document.apiVersion, document.kind, document.data), null, `${document.file}: ${document.kind} is valid`)
  }
})

void t.test('the schema validation rejects a broken Deployment (so the check above can fail)', async (t) => {
  const broken = structuredClone(k8sDocument('k8s/base/deployment.yaml', 'Deployment')) as { spec: { replicas: unknown, template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } } }
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = '8080'
  t.match(validationError('apps/v1', 'Deployment', broken), /containerPort must be integer/)
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 8080
  broken.spec.replicas = 'three'
  t.match(validationError('apps/v1', 'Deployment', broken), /replicas must be integer/)
  broken.spec.replicas = 3
  delete (broken.spec.template.spec as { containers?: unknown }).containers
  t.match(validationError('apps/v1', 'Deployment', broken), /spec\/template\/spec must have required property containers/)
  t.equal(validationError('apps/v1beta1', 'Deployment', broken), 'no schema for apps/v1beta1/Deployment')
})

void t.test('every kustomization lists every file of its directory, and only existing ones', async (t) => {
  const kustomizations = filesUnder('k8s').filter((file) => file.endsWith('/kustomization.yaml'))
  t.same(kustomizations, ['k8s/base/kustomization.yaml', 'k8s/overlays/example/kustomization.yaml'])
  for (const file of kustomizations) {
    const dir = dirname(file)
    const kustomization = readYaml(file) as { resources?: string[], patches?: Array<{ path?: string }> }
    const referenced = [...(kustomization.resources ?? []), ...(kustomization.patches ?? []).flatMap((patch) => patch.path ?? [])]
    for (const reference of referenced) {
      const target = join(root, dir, reference)
      const exists = existsSync(target) && (statSync(target).isFile() || existsSync(join(target, 'kustomization.yaml')))
      t.ok(exists, `${file}: ${reference} exists`)
    }
    const ownFiles = filesUnder(dir).filter((path) => dirname(path) === dir && path !== file).map((path) => path.slice(dir.length + 1))
    t.same(referenced.filter((reference) => !reference.includes('/')).sort(), ownFiles, `${file} lists every file in ${dir}`)
  }
})

void t.test('the example overlay removes the replica count the HPA owns', async (t) => {
  const kustomization = readYaml('k8s/overlays/example/kustomization.yaml') as { patches: Array<{ target?: { kind: string, name: string }, patch?: string }> }
  const inline = kustomization.patches.filter((patch) => patch.patch !== undefined)
  t.equal(inline.length, 1)
  t.same(inline[0]!.target, { kind: 'Deployment', name: 'realtime-gateway' })
  t.same(parse(inline[0]!.patch!), [{ op: 'remove', path: '/spec/replicas' }])
  t.equal(deployment.spec!.replicas, 3, 'the base has the field the patch removes')
})

void t.test('container port, Service targetPort, probes, scrape annotation and PORT agree', async (t) => {
  t.equal(podSpec.containers.length, 1)
  t.equal(container.name, 'gateway')
  t.same(container.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'probes', containerPort: 8081, protocol: 'TCP' }])
  t.equal(configMap.PORT, '8080')
  t.equal(configMap.PROBE_PORT, '8081', 'the probes have their own port and thread')
  t.equal(service.spec!.ports!.length, 1)
  t.equal(resolvePort(service.spec!.ports![0]!.targetPort), 8080, 'Service targetPort is the container port')
  for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) {
    t.equal(resolvePort(probe?.httpGet?.port), Number(configMap.PROBE_PORT), `probe ${probe?.httpGet?.path} uses PROBE_PORT`)
  }
  const annotations = deployment.spec!.template.metadata!.annotations!
  t.same(annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics' })
  // /metrics is on the main port unless METRICS_PORT moves it; the scrape must follow.
  t.equal(annotations['prometheus.io/port'], configMap.METRICS_PORT ?? configMap.PORT, 'Prometheus scrapes the port /metrics is on')
  const runtime = dockerStages().at(-1)!
  const exposed = runtime.instructions.filter((instruction) => instruction.getKeyword() === 'EXPOSE').map((instruction) => instruction.getArgumentsContent())
  t.same(exposed, ['8080'], 'the image exposes the same port')
})

void t.test('probes: startup and liveness on /livez, readiness on /readyz, with room before a restart', async (t) => {
  const startup = container.startupProbe!
  const readiness = container.readinessProbe!
  const liveness = container.livenessProbe!
  t.equal(startup.httpGet!.path, '/livez')
  t.equal(readiness.httpGet!.path, '/readyz')
  t.equal(liveness.httpGet!.path, '/livez')
  // Startup: up to 30 s to listen before the kubelet gives up.
  t.equal(startup.periodSeconds! * startup.failureThreshold!, 30)
  // Liveness: 30 s of an unanswering event loop before a restart, each check allowed 3 s.
  t.equal(liveness.periodSeconds! * liveness.failureThreshold!, 30)
  t.ok(liveness.timeoutSeconds! < liveness.periodSeconds!)
  // Readiness reacts to Redis loss or draining within 10 s.
  t.equal(readiness.periodSeconds! * readiness.failureThreshold!, 10)
  t.equal(readiness.successThreshold, 1)
})

void t.test('the probe paths and the scrape path are served by the app', async (t) => {
  const config = loadConfig({ ...configMap, PROBE_PORT: '0', JWT_SECRET: secret.JWT_SECRET, NODE_ENV: undefined, LOG_LEVEL: 'silent' })
  const app = await buildApp(config, { engine: configuredEngine(config) })
  t.teardown(async () => { await app.close() })
  const paths = [container.startupProbe!.httpGet!.path!, container.readinessProbe!.httpGet!.path!, container.livenessProbe!.httpGet!.path!]
  for (const path of paths) {
    const response = await app.inject({ method: 'GET', url: path })
    // The embedded engine is ready at once: 200 (a 404 would mean the probe path is wrong).
    t.equal(response.statusCode, 200, `GET ${path}`)
  }
  const metrics = await app.inject({ method: 'GET', url: deployment.spec!.template.metadata!.annotations!['prometheus.io/path']! })
  t.equal(metrics.statusCode, 200)
  const hpaMetric = hpa.spec!.metrics!.find((metric) => metric.type === 'Pods')!.pods!.metric.name
  t.match(metrics.body, new RegExp(`^# TYPE ${hpaMetric} gauge$`, 'm'), 'the HPA metric is a gauge the app exports')
})

void t.test('termination grace covers the preStop pause, SHUTDOWN_GRACE_MS and the hard exit, with a margin', async (t) => {
  const command = container.lifecycle!.preStop!.exec!.command!
  t.same(command, ['sleep', '5'])
  const preStopSeconds = Number(command[1])
  const shutdownGraceMs = Number(configMap.SHUTDOWN_GRACE_MS)
  t.equal(shutdownGraceMs, 10000)
  // main.ts exits on its own this long after SHUTDOWN_GRACE_MS at the latest (close-with-grace delay).
  const hardExit = /delay: config\.shutdownGraceMs \+ (\d+)/.exec(readText('src/server/main.ts'))
  t.ok(hardExit, 'main.ts bounds the drain')
  const slackMs = Number(hardExit?.[1])
  const grace = podSpec.terminationGracePeriodSeconds!
  const needed = preStopSeconds + (shutdownGraceMs + slackMs) / 1000
  t.equal(needed, 16)
  t.ok(grace > needed, `grace ${grace} s > preStop ${preStopSeconds} s + drain ${(shutdownGraceMs + slackMs) / 1000} s`)
  t.ok(grace - needed >= 5, `a margin of at least 5 s (${grace - needed} s)`)
})

void t.test('env names in the ConfigMap, the Secret and the Deployment are variables the gateway knows', async (t) => {
  const { schema, example } = knownEnvNames()
  t.ok(schema.has('SHUTDOWN_GRACE_MS') && example.has('SHUTDOWN_GRACE_MS'), 'the readers found the variables')
  const overlay = stringDataOf(k8sDocument('k8s/overlays/example/configmap-patch.yaml', 'ConfigMap'))
  const names = new Set([
    ...Object.keys(configMap), ...Object.keys(secret), ...Object.keys(overlay),
    ...(container.env ?? []).map((variable) => variable.name)
  ])
  t.ok(names.size >= 15)
  for (const name of names) {
    t.ok(schema.has(name), `${name} is in the config schema`)
    t.ok(example.has(name), `${name} is in .env.example`)
  }
  t.same(Object.keys(secret).sort(), ['JWT_SECRET', 'REDIS_URL'], 'only secrets in the Secret')
  t.notOk('REDIS_URL' in configMap || 'JWT_SECRET' in configMap, 'no secret in the ConfigMap')
})

void t.test('the ConfigMap and the example Secret make a valid production configuration', async (t) => {
  const config = loadConfig({ ...configMap, ...secret })
  t.equal(followsProductionRules({ ...configMap, ...secret }), true)
  t.equal(config.port, 8080)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.shutdownGraceMs, 10000)
  t.equal(config.jwt.devSecret, false)
  t.same([...config.allowedOrigins!], ['https://app.example.com'])
  const overlay = stringDataOf(k8sDocument('k8s/overlays/example/configmap-patch.yaml', 'ConfigMap'))
  t.same([...loadConfig({ ...configMap, ...overlay, ...secret }).allowedOrigins!], ['https://app.example.com', 'https://admin.example.com'])
})

void t.test('references between the objects resolve', async (t) => {
  t.same(container.envFrom, [{ configMapRef: { name: 'realtime-gateway' } }, { secretRef: { name: 'realtime-gateway' } }])
  t.equal(k8sDocuments().filter((document) => document.kind === 'ConfigMap' && document.file.startsWith('k8s/base/'))[0]!.name, 'realtime-gateway')
  t.equal(k8sDocuments().filter((document) => document.kind === 'Secret')[0]!.name, 'realtime-gateway')
  t.equal(podSpec.serviceAccountName, 'realtime-gateway')
  t.equal(podSpec.automountServiceAccountToken, false)
  t.same(container.volumeMounts!.map((mount) => mount.name), podSpec.volumes!.map((volume) => volume.name))
  t.same(hpa.spec!.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata!.name })
  t.equal(container.image, 'realtime-gateway:0.1.0')
  const overlay = readYaml('k8s/overlays/example/kustomization.yaml') as { images: Array<{ name: string }> }
  t.same(overlay.images.map((image) => image.name), ['realtime-gateway'], 'the overlay retags the base image')
})

void t.test('selectors match the pod labels', async (t) => {
  t.same(podLabels, { 'app.kubernetes.io/name': 'realtime-gateway', 'app.kubernetes.io/component': 'gateway' })
  t.ok(includesLabels(deployment.spec!.selector.matchLabels, podLabels), 'Deployment')
  t.ok(includesLabels(service.spec!.selector, podLabels), 'Service')
  t.ok(includesLabels(pdb.spec!.selector!.matchLabels, podLabels), 'PodDisruptionBudget')
  t.ok(includesLabels(networkPolicy.spec!.podSelector.matchLabels, podLabels), 'NetworkPolicy')
  for (const constraint of podSpec.topologySpreadConstraints!) {
    t.ok(includesLabels(constraint.labelSelector!.matchLabels, podLabels), `spread over ${constraint.topologyKey}`)
  }
  t.ok(includesLabels({ 'app.kubernetes.io/name': 'other' }, podLabels) === false, 'a foreign selector does not match')
})

void t.test('pods run as the image user, non-root, read-only, with no capabilities and the default seccomp profile', async (t) => {
  const pod = podSpec.securityContext!
  t.equal(pod.runAsNonRoot, true)
  t.equal(pod.runAsUser, 1000)
  t.equal(pod.runAsGroup, 1000)
  t.same(pod.seccompProfile, { type: 'RuntimeDefault' })
  const user = dockerStages().at(-1)!.instructions.filter((instruction) => instruction.getKeyword() === 'USER').at(-1)
  t.equal(user?.getArgumentsContent(), `${pod.runAsUser}:${pod.runAsGroup}`, 'the same user as the Dockerfile')
  const own = container.securityContext!
  t.equal(own.runAsNonRoot, true)
  t.equal(own.allowPrivilegeEscalation, false)
  t.equal(own.readOnlyRootFilesystem, true)
  t.equal(own.privileged, false)
  t.same(own.capabilities, { drop: ['ALL'] })
  t.equal(own.runAsUser, undefined, 'no container override of the pod user')
})

void t.test('rolling updates never lower capacity, and disruptions take one pod at a time', async (t) => {
  t.equal(deployment.spec!.replicas, 3)
  t.equal(deployment.spec!.strategy!.type, 'RollingUpdate')
  t.equal(deployment.spec!.strategy!.rollingUpdate!.maxUnavailable, 0)
  t.equal(deployment.spec!.strategy!.rollingUpdate!.maxSurge, 1)
  t.equal(pdb.spec!.maxUnavailable, 1)
  t.equal(pdb.spec!.minAvailable, undefined)
  t.ok(hpa.spec!.minReplicas! > (pdb.spec!.maxUnavailable as number), 'a drain never empties the Deployment')
})

void t.test('resources: requests for scheduling and the HPA, a memory limit, no CPU limit', async (t) => {
  t.same(container.resources, { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } })
})

void t.test('the HPA scales on open connections per pod and scales down slowly', async (t) => {
  const spec = hpa.spec!
  t.equal(spec.minReplicas, deployment.spec!.replicas)
  t.equal(spec.maxReplicas, 20)
  const pods = spec.metrics!.filter((metric) => metric.type === 'Pods')
  t.equal(pods.length, 1)
  t.same(pods[0]!.pods, { metric: { name: 'rtgw_connections_open' }, target: { type: 'AverageValue', averageValue: '5000' } })
  const cpu = spec.metrics!.find((metric) => metric.type === 'Resource')
  t.same(cpu?.resource, { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } })
  t.ok(container.resources?.requests?.cpu, 'CPU utilization needs a CPU request')
  t.equal(spec.behavior!.scaleDown!.stabilizationWindowSeconds, 600)
  t.same(spec.behavior!.scaleDown!.policies, [{ type: 'Pods', value: 1, periodSeconds: 120 }])
})

void t.test('the NetworkPolicy lets the gateway port in, and only Redis and DNS out', async (t) => {
  const spec = networkPolicy.spec!
  t.same(spec.policyTypes, ['Ingress', 'Egress'])
  t.same(spec.ingress, [{ ports: [{ port: 8080, protocol: 'TCP' }] }])
  const egressPorts = spec.egress!.map((rule) => rule.ports!.map((port) => `${port.port}/${port.protocol}`))
  t.same(egressPorts, [['6379/TCP'], ['53/UDP', '53/TCP']])
  const redisPort = Number(new URL(secret.REDIS_URL!).port || 6379)
  t.equal(redisPort, 6379, 'the example REDIS_URL uses the port the policy opens')
})
