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

{{/*
The controller's rules on SealedSecrets, their Secrets and events: in a ClusterRole, or in a
Role per watched namespace with rbac.namespacedRoles.
*/}}
{{- define "gitseal.unsealerRules" -}}
- apiGroups: [bitnami.com]
  resources: [sealedsecrets]
  verbs: [get, list, watch]
# Statuses are written by merge patch only (no update).
- apiGroups: [bitnami.com]
  resources: [sealedsecrets/status]
  verbs: [patch]
# Only the SopsSecret and ExternalSecret reconcilers delete Secrets (those they own).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, create, update, {{ if or .Values.sopsSecrets.enabled .Values.externalSecrets.enabled }}delete, {{ end }}watch]
# Events are core/v1, created once and never patched.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.sopsSecrets.enabled }}
- apiGroups: [isindir.github.com]
  resources: [sopssecrets]
  verbs: [get, list, watch]
- apiGroups: [isindir.github.com]
  resources: [sopssecrets/status]
  verbs: [patch]
# Secrets are written with blockOwnerDeletion: with OwnerReferencesPermissionEnforcement
# (OpenShift) that takes update on the owner's finalizers.
- apiGroups: [isindir.github.com]
  resources: [sopssecrets/finalizers]
  verbs: [update]
{{- end }}
{{- if .Values.externalSecrets.enabled }}
- apiGroups: [external-secrets.io]
  resources: [externalsecrets, secretstores]
  verbs: [get, list, watch]
- apiGroups: [external-secrets.io]
  resources: [externalsecrets/status, secretstores/status]
  verbs: [patch]
# Secrets are written with blockOwnerDeletion (as for SopsSecrets above).
- apiGroups: [external-secrets.io]
  resources: [externalsecrets/finalizers]
  verbs: [update]
# templateFrom and caProvider ConfigMaps; service account tokens for Vault's Kubernetes
# and JWT auth (TokenRequest, at login only).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
# Workloads annotated gitseal.dev/restart-on-secret-change: restarted (pod template
# annotations patched) when a Secret they name changes.
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, patch]
{{- end }}
{{- end }}
