{{/* A PodDisruptionBudget. Usage: include "ehrsum.pdb" (dict "ctx" $ "component" "api" "pdb" .Values.api.pdb) */}}
{{- define "ehrsum.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "ehrsum.metadata" (dict "ctx" .ctx "component" .component "name" (include "ehrsum.componentName" (dict "ctx" .ctx "component" .component))) | nindent 2 }}
spec:
  {{- if not (eq (toString .pdb.minAvailable) "") }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "ehrsum.componentSelectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
{{- end -}}
