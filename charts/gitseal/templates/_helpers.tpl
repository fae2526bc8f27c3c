{{- define "gitseal.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gitseal.serviceAccountName" -}}
{{- default (include "gitseal.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "gitseal.labels" -}}
app.kubernetes.io/name: gitseal
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gitseal.selectorLabels" -}}
app.kubernetes.io/name: gitseal
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gitseal.mapFlag" -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
