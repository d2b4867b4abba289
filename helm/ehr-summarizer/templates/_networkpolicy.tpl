{{/* Rules shared by the NetworkPolicies (templates/networkpolicy.yaml). */}}

{{- define "ehrsum.np.peerRule" -}}
{{- /* A rule to cidrs+peers on ports, or nothing when no destination is configured (an empty `to` means everywhere). */ -}}
{{- if or .cidrs .peers }}
- to:
    {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- with .peers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    {{- toYaml .ports | nindent 4 }}
{{- end }}
{{- end -}}
{{- define "ehrsum.np.podRule" -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "ehrsum.componentSelectorLabels" (dict "ctx" .ctx "component" .component) | nindent 10 }}
  ports:
    - port: {{ .port }}
      protocol: TCP
{{- end -}}
{{- define "ehrsum.np.serviceEgress" -}}
{{- $ := .ctx -}}
{{- $np := $.Values.networkPolicy -}}
{{- include "ehrsum.np.peerRule" (dict "cidrs" (list) "peers" $np.egress.dns.peers "ports" $np.egress.dns.ports) }}
{{- if .database }}
{{- if $.Values.postgresql.enabled }}
{{ include "ehrsum.np.podRule" (dict "ctx" $ "component" "postgresql" "port" 5432) }}
{{- else }}
{{- include "ehrsum.np.peerRule" (dict "cidrs" $np.egress.database.cidrs "peers" $np.egress.database.peers "ports" (list (dict "port" (int $.Values.externalDatabase.port) "protocol" "TCP"))) }}
{{- end }}
{{- end }}
{{- if .full }}
{{- if $.Values.redis.enabled }}
{{ include "ehrsum.np.podRule" (dict "ctx" $ "component" "redis" "port" 6379) }}
{{- else }}
{{- include "ehrsum.np.peerRule" (dict "cidrs" $np.egress.redis.cidrs "peers" $np.egress.redis.peers "ports" (list (dict "port" (int $.Values.externalRedis.port) "protocol" "TCP"))) }}
{{- end }}
{{- include "ehrsum.np.peerRule" (dict "cidrs" $np.egress.fhir.cidrs "peers" $np.egress.fhir.peers "ports" $np.egress.fhir.ports) }}
{{- if and $.Values.vllm.enabled (not $.Values.llm.baseUrl) }}
{{ include "ehrsum.np.podRule" (dict "ctx" $ "component" "vllm" "port" (int $.Values.vllm.service.port)) }}
{{- else }}
{{- include "ehrsum.np.peerRule" (dict "cidrs" $np.egress.llm.cidrs "peers" $np.egress.llm.peers "ports" $np.egress.llm.ports) }}
{{- end }}
{{- include "ehrsum.np.peerRule" (dict "cidrs" $np.egress.identityProvider.cidrs "peers" $np.egress.identityProvider.peers "ports" $np.egress.identityProvider.ports) }}
{{- if $.Values.tracing.otlpEndpoint }}
{{- include "ehrsum.np.peerRule" (dict "cidrs" $np.egress.collector.cidrs "peers" $np.egress.collector.peers "ports" $np.egress.collector.ports) }}
{{- end }}
{{- with $np.egress.extraRules }}
{{ toYaml . }}
{{- end }}
{{- if $np.allowExternalEgress }}
- {}
{{- end }}
{{- end }}
{{- end -}}
{{- define "ehrsum.np.fromRelease" -}}
{{- $ := .ctx -}}
{{- range .components }}
- podSelector:
    matchLabels:
      {{- include "ehrsum.componentSelectorLabels" (dict "ctx" $ "component" .) | nindent 6 }}
{{- end }}
{{- end -}}
