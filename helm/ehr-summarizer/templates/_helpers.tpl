{{/*
Names, labels, images, security contexts, probes, and the environment every service container shares.
*/}}

{{- define "ehrsum.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ehrsum.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: <fullname>-<component>, within 63 characters. */}}
{{- define "ehrsum.componentName" -}}
{{- printf "%s-%s" (include "ehrsum.fullname" .ctx | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component -}}
{{- end -}}

{{- define "ehrsum.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ehrsum.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ehrsum.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ehrsum.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ehrsum.labels" -}}
helm.sh/chart: {{ include "ehrsum.chart" . }}
{{ include "ehrsum.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ehr-summarizer
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of a component's objects. Usage: include "ehrsum.componentLabels" (dict "ctx" $ "component" "api") */}}
{{- define "ehrsum.componentLabels" -}}
{{ include "ehrsum.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ehrsum.componentSelectorLabels" -}}
{{ include "ehrsum.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The metadata block every namespaced object shares (name, namespace, labels, annotations). */}}
{{- define "ehrsum.metadata" -}}
name: {{ .name }}
namespace: {{ include "ehrsum.namespace" .ctx }}
labels:
  {{- include "ehrsum.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 2 }}
{{- $annotations := merge (dict) (.annotations | default dict) .ctx.Values.commonAnnotations }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "ehrsum.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ehrsum.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference: global.imageRegistry wins over the image's registry; a digest wins over the tag.
Usage: include "ehrsum.image" (dict "image" .Values.image "global" .Values.global "defaultTag" .Chart.AppVersion)
*/}}
{{- define "ehrsum.image" -}}
{{- $registry := .image.registry -}}
{{- if .global.imageRegistry -}}{{- $registry = .global.imageRegistry -}}{{- end -}}
{{- $repository := .image.repository -}}
{{- if $registry -}}{{- $repository = printf "%s/%s" $registry .image.repository -}}{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (toString (default .defaultTag .image.tag)) -}}
{{- end -}}
{{- end -}}

{{- define "ehrsum.serviceImage" -}}
{{- include "ehrsum.image" (dict "image" .Values.image "global" .Values.global "defaultTag" .Chart.AppVersion) -}}
{{- end -}}

{{- define "ehrsum.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* A probe from values ({enabled, *Seconds, *Threshold}) and a handler. Usage: include "ehrsum.probe" (dict "probe" .Values.api.livenessProbe "handler" $handler) */}}
{{- define "ehrsum.probe" -}}
{{- .handler }}
initialDelaySeconds: {{ .probe.initialDelaySeconds }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
successThreshold: {{ .probe.successThreshold }}
{{- end -}}

{{/* ---------- Secrets: where each credential comes from ---------- */}}

{{- define "ehrsum.generatedSecretName" -}}
{{- include "ehrsum.componentName" (dict "ctx" . "component" "generated") -}}
{{- end -}}

{{/* Does the chart need to generate a Secret? Prints "true" or nothing. */}}
{{- define "ehrsum.needsGeneratedSecret" -}}
{{- if or (and .Values.postgresql.enabled (not .Values.postgresql.auth.existingSecret)) (and .Values.redis.enabled .Values.redis.auth.enabled (not .Values.redis.auth.existingSecret)) (and .Values.webhook.enabled (not .Values.webhook.existingSecret)) (and .Values.apiAuth.devToken.enabled (not .Values.apiAuth.devToken.existingSecret)) -}}
true
{{- end -}}
{{- end -}}

{{/* The database password's secretKeyRef, or nothing when there is none. */}}
{{- define "ehrsum.databasePasswordRef" -}}
{{- if .Values.postgresql.enabled -}}
{{- if .Values.postgresql.auth.existingSecret -}}
name: {{ .Values.postgresql.auth.existingSecret }}
key: {{ .Values.postgresql.auth.existingSecretPasswordKey }}
{{- else -}}
name: {{ include "ehrsum.generatedSecretName" . }}
key: postgres-password
{{- end -}}
{{- else if and .Values.externalDatabase.existingSecret (not .Values.externalDatabase.existingSecretUrlKey) -}}
name: {{ .Values.externalDatabase.existingSecret }}
key: {{ .Values.externalDatabase.existingSecretPasswordKey }}
{{- end -}}
{{- end -}}

{{- define "ehrsum.redisPasswordRef" -}}
{{- if .Values.redis.enabled -}}
{{- if .Values.redis.auth.enabled -}}
{{- if .Values.redis.auth.existingSecret -}}
name: {{ .Values.redis.auth.existingSecret }}
key: {{ .Values.redis.auth.existingSecretPasswordKey }}
{{- else -}}
name: {{ include "ehrsum.generatedSecretName" . }}
key: redis-password
{{- end -}}
{{- end -}}
{{- else if and .Values.externalRedis.existingSecret (not .Values.externalRedis.existingSecretUrlKey) -}}
name: {{ .Values.externalRedis.existingSecret }}
key: {{ .Values.externalRedis.existingSecretPasswordKey }}
{{- end -}}
{{- end -}}

{{- define "ehrsum.webhookSecretRef" -}}
{{- if .Values.webhook.enabled -}}
{{- if .Values.webhook.existingSecret -}}
name: {{ .Values.webhook.existingSecret }}
key: {{ .Values.webhook.existingSecretKey }}
{{- else -}}
name: {{ include "ehrsum.generatedSecretName" . }}
key: webhook-secret
{{- end -}}
{{- end -}}
{{- end -}}

{{/* ---------- Connection URLs (passwords never in them: PGPASSWORD, and $(VAR) expanded by the kubelet) ---------- */}}

{{- define "ehrsum.databaseUrl" -}}
{{- if .Values.postgresql.enabled -}}
{{- printf "postgresql+psycopg://%s@%s:%d/%s" .Values.postgresql.auth.username (include "ehrsum.componentName" (dict "ctx" . "component" "postgresql")) (int .Values.postgresql.service.port) .Values.postgresql.auth.database -}}
{{- else -}}
{{- $url := printf "postgresql+psycopg://%s@%s:%d/%s" .Values.externalDatabase.user .Values.externalDatabase.host (int .Values.externalDatabase.port) .Values.externalDatabase.database -}}
{{- if .Values.externalDatabase.sslMode -}}{{- $url = printf "%s?sslmode=%s" $url .Values.externalDatabase.sslMode -}}{{- end -}}
{{- $url -}}
{{- end -}}
{{- end -}}

{{- define "ehrsum.brokerUrl" -}}
{{- $auth := "" -}}
{{- if include "ehrsum.redisPasswordRef" . -}}{{- $auth = ":$(EHRSUM_REDIS_PASSWORD)@" -}}{{- end -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s%s:%d/0" $auth (include "ehrsum.componentName" (dict "ctx" . "component" "redis")) (int .Values.redis.service.port) -}}
{{- else -}}
{{- $scheme := ternary "rediss" "redis" .Values.externalRedis.tls -}}
{{- $url := printf "%s://%s%s:%d/%d" $scheme $auth .Values.externalRedis.host (int .Values.externalRedis.port) (int .Values.externalRedis.database) -}}
{{- if .Values.externalRedis.tls -}}{{- $url = printf "%s?ssl_cert_reqs=required" $url -}}{{- end -}}
{{- $url -}}
{{- end -}}
{{- end -}}

{{- define "ehrsum.llmBaseUrl" -}}
{{- if .Values.llm.baseUrl -}}
{{- .Values.llm.baseUrl -}}
{{- else if .Values.vllm.enabled -}}
{{- printf "http://%s:%d/v1" (include "ehrsum.componentName" (dict "ctx" . "component" "vllm")) (int .Values.vllm.service.port) -}}
{{- end -}}
{{- end -}}

{{/*
Secret-backed environment of the service containers. Each variable names its source; none is inline.
Usage: include "ehrsum.secretEnv" (dict "ctx" $ "scope" "full")   scope "db" = database only (migrations).
*/}}
{{- define "ehrsum.secretEnv" -}}
{{- $ := .ctx -}}
{{- $v := $.Values -}}
{{- if and (not $v.postgresql.enabled) $v.externalDatabase.existingSecretUrlKey }}
- name: EHRSUM_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.externalDatabase.existingSecret }}
      key: {{ $v.externalDatabase.existingSecretUrlKey }}
{{- else }}
{{- with include "ehrsum.databasePasswordRef" $ }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      {{- . | nindent 6 }}
{{- end }}
- name: EHRSUM_DATABASE_URL
  value: {{ include "ehrsum.databaseUrl" $ | quote }}
{{- end }}
{{- if eq .scope "full" }}
{{- if and (not $v.redis.enabled) $v.externalRedis.existingSecretUrlKey }}
- name: EHRSUM_BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.externalRedis.existingSecret }}
      key: {{ $v.externalRedis.existingSecretUrlKey }}
{{- else }}
{{- with include "ehrsum.redisPasswordRef" $ }}
- name: EHRSUM_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- . | nindent 6 }}
{{- end }}
- name: EHRSUM_BROKER_URL
  value: {{ include "ehrsum.brokerUrl" $ | quote }}
{{- end }}
{{- if eq $v.fhir.auth "basic" }}
- name: EHRSUM_FHIR_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $v.fhir.existingSecret }}
      key: {{ $v.fhir.secretKeys.username }}
- name: EHRSUM_FHIR_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.fhir.existingSecret }}
      key: {{ $v.fhir.secretKeys.password }}
{{- else if eq $v.fhir.auth "bearer" }}
- name: EHRSUM_FHIR_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $v.fhir.existingSecret }}
      key: {{ $v.fhir.secretKeys.token }}
{{- else if eq $v.fhir.auth "smart" }}
- name: EHRSUM_FHIR_CLIENT_ID
  valueFrom:
    secretKeyRef:
      name: {{ $v.fhir.existingSecret }}
      key: {{ $v.fhir.secretKeys.clientId }}
- name: EHRSUM_FHIR_PRIVATE_KEY_PATH
  value: /var/run/secrets/ehrsum/smart/{{ $v.fhir.secretKeys.privateKey }}
{{- end }}
{{- if $v.llm.existingSecret }}
- name: EHRSUM_LLM_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.llm.existingSecret }}
      key: {{ $v.llm.existingSecretKey }}
{{- end }}
{{- if $v.apiAuth.existingSecret }}
- name: EHRSUM_API_JWKS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.apiAuth.existingSecret }}
      key: {{ $v.apiAuth.jwksUrlKey }}
{{- end }}
{{- if $v.apiAuth.devToken.enabled }}
- name: EHRSUM_API_DEV_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ default (include "ehrsum.generatedSecretName" $) $v.apiAuth.devToken.existingSecret }}
      key: {{ ternary $v.apiAuth.devToken.existingSecretKey "api-dev-token" (ne $v.apiAuth.devToken.existingSecret "") }}
{{- end }}
{{- with include "ehrsum.webhookSecretRef" $ }}
- name: EHRSUM_NOTIFICATION_SECRET
  valueFrom:
    secretKeyRef:
      {{- . | nindent 6 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The volumes and mounts every service container has: /tmp, and the SMART key when used. */}}
{{- define "ehrsum.serviceVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- if eq .Values.fhir.auth "smart" }}
- name: smart-key
  secret:
    secretName: {{ .Values.fhir.existingSecret }}
    defaultMode: 0400
    items:
      - key: {{ .Values.fhir.secretKeys.privateKey }}
        path: {{ .Values.fhir.secretKeys.privateKey }}
{{- end }}
{{- end -}}

{{- define "ehrsum.serviceVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if eq .Values.fhir.auth "smart" }}
- name: smart-key
  mountPath: /var/run/secrets/ehrsum/smart
  readOnly: true
{{- end }}
{{- end -}}

{{/* Checksums that roll the pods when their configuration changes. */}}
{{- define "ehrsum.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}

{{/* ---------- Validation: clear failures instead of a half-working release ---------- */}}
{{- define "ehrsum.validateValues" -}}
{{- $v := .Values -}}
{{- if and (not $v.vllm.enabled) (not $v.llm.baseUrl) -}}
{{- fail "llm.baseUrl is required when vllm.enabled is false (the URL of an existing OpenAI-compatible server, ending in /v1)" -}}
{{- end -}}
{{- if and (not $v.postgresql.enabled) (not $v.externalDatabase.host) (not $v.externalDatabase.existingSecretUrlKey) -}}
{{- fail "externalDatabase.host (or externalDatabase.existingSecretUrlKey) is required when postgresql.enabled is false" -}}
{{- end -}}
{{- if and $v.externalDatabase.existingSecretUrlKey (not $v.externalDatabase.existingSecret) -}}
{{- fail "externalDatabase.existingSecretUrlKey needs externalDatabase.existingSecret" -}}
{{- end -}}
{{- if and (not $v.redis.enabled) (not $v.externalRedis.host) (not $v.externalRedis.existingSecretUrlKey) -}}
{{- fail "externalRedis.host (or externalRedis.existingSecretUrlKey) is required when redis.enabled is false" -}}
{{- end -}}
{{- if and $v.externalRedis.existingSecretUrlKey (not $v.externalRedis.existingSecret) -}}
{{- fail "externalRedis.existingSecretUrlKey needs externalRedis.existingSecret" -}}
{{- end -}}
{{- if and (ne $v.fhir.auth "none") (not $v.fhir.existingSecret) -}}
{{- fail (printf "fhir.existingSecret is required with fhir.auth=%s (the chart never takes credentials inline)" $v.fhir.auth) -}}
{{- end -}}
{{- if not $v.secrets.generate -}}
{{- if and $v.postgresql.enabled (not $v.postgresql.auth.existingSecret) -}}
{{- fail "secrets.generate is false: set postgresql.auth.existingSecret" -}}
{{- end -}}
{{- if and $v.redis.enabled $v.redis.auth.enabled (not $v.redis.auth.existingSecret) -}}
{{- fail "secrets.generate is false: set redis.auth.existingSecret" -}}
{{- end -}}
{{- if and $v.webhook.enabled (not $v.webhook.existingSecret) -}}
{{- fail "secrets.generate is false: set webhook.existingSecret" -}}
{{- end -}}
{{- if and $v.apiAuth.devToken.enabled (not $v.apiAuth.devToken.existingSecret) -}}
{{- fail "secrets.generate is false: set apiAuth.devToken.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- if and $v.vllm.enabled (ne $v.llm.model $v.vllm.model.servedName) -}}
{{- fail (printf "llm.model (%s) must equal vllm.model.servedName (%s): the workers ask for the served name" $v.llm.model $v.vllm.model.servedName) -}}
{{- end -}}
{{- if and $v.vllm.enabled (gt (int $v.llm.contextTokens) (int $v.vllm.maxModelLen)) -}}
{{- fail (printf "llm.contextTokens (%d) exceeds vllm.maxModelLen (%d)" (int $v.llm.contextTokens) (int $v.vllm.maxModelLen)) -}}
{{- end -}}
{{- if $v.vllm.enabled -}}
{{- $served := list -}}
{{- if $v.vllm.lora.enabled -}}{{- range $v.vllm.lora.adapters -}}{{- $served = append $served .name -}}{{- end -}}{{- end -}}
{{- range $v.llm.adapters -}}
{{- if not (has .adapter $served) -}}
{{- fail (printf "llm.adapters names %s, which vLLM does not serve: add it to vllm.lora.adapters (with vllm.lora.enabled)" .adapter) -}}
{{- end -}}
{{- end -}}
{{- if and $v.vllm.lora.enabled (eq $v.vllm.lora.source "pvc") (not $v.vllm.lora.existingClaim) -}}
{{- fail "vllm.lora.source=pvc needs vllm.lora.existingClaim (the chart does not create the adapters volume)" -}}
{{- end -}}
{{- end -}}
{{- if and $v.vllm.enabled (gt (int $v.vllm.tensorParallelSize) (int (include "ehrsum.vllmGpuCount" .))) -}}
{{- fail "vllm.gpu.count must be at least vllm.tensorParallelSize" -}}
{{- end -}}
{{- if and $v.worker.keda.enabled (not $v.redis.enabled) $v.externalRedis.existingSecretUrlKey -}}
{{- fail "worker.keda needs externalRedis.host/port (KEDA cannot read the broker URL from externalRedis.existingSecretUrlKey)" -}}
{{- end -}}
{{- end -}}

{{- define "ehrsum.vllmGpuCount" -}}
{{- if gt (int .Values.vllm.gpu.count) 0 -}}{{- .Values.vllm.gpu.count -}}{{- else -}}{{- .Values.vllm.tensorParallelSize -}}{{- end -}}
{{- end -}}

{{/* vLLM's arguments after `vllm serve`, one per list item. */}}
{{- define "ehrsum.vllmArgs" -}}
{{- $v := .Values.vllm -}}
{{- if $v.model.localDir }}
- {{ printf "%s/%s" (trimSuffix "/" $v.weights.mountPath) (trimPrefix "/" $v.model.localDir) | quote }}
{{- else }}
- {{ $v.model.id | quote }}
{{- end }}
- "--served-model-name"
- {{ $v.model.servedName | quote }}
- "--host"
- "0.0.0.0"
- "--port"
- {{ int $v.service.port | quote }}
- "--max-model-len"
- {{ int $v.maxModelLen | quote }}
- "--gpu-memory-utilization"
- {{ $v.gpuMemoryUtilization | quote }}
- "--dtype"
- {{ $v.dtype | quote }}
- "--tensor-parallel-size"
- {{ int $v.tensorParallelSize | quote }}
{{- if $v.enablePrefixCaching }}
- "--enable-prefix-caching"
{{- if $v.prefixCacheRetentionInterval }}
- "--prefix-cache-retention-interval"
- {{ int $v.prefixCacheRetentionInterval | quote }}
{{- end }}
{{- else }}
- "--no-enable-prefix-caching"
{{- end }}
{{- if $v.quantization }}
- "--quantization"
- {{ $v.quantization | quote }}
{{- end }}
{{- if ne $v.kvCacheDtype "auto" }}
- "--kv-cache-dtype"
- {{ $v.kvCacheDtype | quote }}
{{- end }}
{{- if $v.lora.enabled }}
- "--enable-lora"
- "--max-lora-rank"
- {{ int $v.lora.maxRank | quote }}
- "--max-loras"
- {{ max 1 (len $v.lora.adapters) | quote }}
{{- with $v.lora.adapters }}
- "--lora-modules"
{{- range . }}
- {{ printf "%s=%s/%s" .name (trimSuffix "/" $v.lora.mountPath) .path | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.structuredOutputsConfig }}
- "--structured-outputs-config"
- {{ toJson . | quote }}
{{- end }}
{{- if and .Values.tracing.otlpEndpoint .Values.tracing.vllm }}
- "--otlp-traces-endpoint"
- {{ printf "%s/v1/traces" (trimSuffix "/" .Values.tracing.otlpEndpoint) | quote }}
{{- end }}
{{- range $v.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
The parts of a service pod (api, worker, beat) that do not depend on the component.
Usage: include "ehrsum.servicePodSpec" (dict "ctx" $ "values" .Values.api)
*/}}
{{- define "ehrsum.servicePodSpec" -}}
{{- $ := .ctx -}}
serviceAccountName: {{ include "ehrsum.serviceAccountName" $ }}
automountServiceAccountToken: {{ $.Values.serviceAccount.automountServiceAccountToken }}
enableServiceLinks: false
{{- include "ehrsum.imagePullSecrets" $ }}
securityContext:
  {{- toYaml $.Values.podSecurityContext | nindent 2 }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "ehrsum.serviceVolumes" $ | nindent 2 }}
  {{- with .values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* The container fields every service container shares after name/args. */}}
{{- define "ehrsum.serviceContainerCommon" -}}
{{- $ := .ctx -}}
image: {{ include "ehrsum.serviceImage" $ }}
imagePullPolicy: {{ $.Values.image.pullPolicy }}
securityContext:
  {{- toYaml $.Values.containerSecurityContext | nindent 2 }}
envFrom:
  - configMapRef:
      name: {{ include "ehrsum.fullname" $ }}
env:
  {{- include "ehrsum.secretEnv" (dict "ctx" $ "scope" "full") | nindent 2 }}
  {{- with .values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
resources:
  {{- toYaml .values.resources | nindent 2 }}
volumeMounts:
  {{- include "ehrsum.serviceVolumeMounts" $ | nindent 2 }}
  {{- with .values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{- define "ehrsum.podAnnotations" -}}
{{- $ := .ctx -}}
{{ include "ehrsum.configChecksum" $ }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "ehrsum.podLabels" -}}
{{ include "ehrsum.componentLabels" (dict "ctx" .ctx "component" .component) }}
{{- with .values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
