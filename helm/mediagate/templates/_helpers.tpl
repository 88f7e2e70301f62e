{{/* Names and labels. */}}
{{- define "mediagate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mediagate.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "mediagate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mediagate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mediagate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mediagate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret holding the admin token, the store URL and the link key. */}}
{{- define "mediagate.secretName" -}}
{{- printf "%s-secrets" (include "mediagate.fullname" .) }}
{{- end }}

{{/* Whether the store is Redis (set directly or through a Secret). */}}
{{- define "mediagate.redis" -}}
{{- if or .Values.store.url .Values.store.existingSecret }}true{{ end }}
{{- end }}

{{/* Whether the file bytes are in a bucket. */}}
{{- define "mediagate.bucket" -}}
{{- if .Values.storage.s3.url }}true{{ end }}
{{- end }}

{{/* Whether the pods need their volume: for the bytes (unless in a bucket) or for the
embedded store (unless the store is Redis). */}}
{{- define "mediagate.volume" -}}
{{- if or (not (include "mediagate.bucket" .)) (not (include "mediagate.redis" .)) }}true{{ end }}
{{- end }}

{{/* Whether the chart's Secret holds bucket credentials. */}}
{{- define "mediagate.s3Keys" -}}
{{- if and .Values.storage.s3.accessKeyId (not .Values.storage.s3.existingSecret) }}true{{ end }}
{{- end }}

{{- define "mediagate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mediagate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mediagate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Environment shared by the server and the migration Job: secrets as variables. */}}
{{- define "mediagate.secretEnv" -}}
- name: MEDIAGATE__ADMIN__TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ default (include "mediagate.secretName" .) .Values.admin.existingSecret }}
      key: admin-token
{{- if include "mediagate.redis" . }}
- name: MEDIAGATE__STORE__URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "mediagate.secretName" .) .Values.store.existingSecret }}
      key: store-url
{{- end }}
{{- if or .Values.links.secret .Values.links.existingSecret }}
- name: MEDIAGATE__LINKS__SECRET
  valueFrom:
    secretKeyRef:
      name: {{ default (include "mediagate.secretName" .) .Values.links.existingSecret }}
      key: link-secret
{{- end }}
{{- if or (include "mediagate.s3Keys" .) .Values.storage.s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ default (include "mediagate.secretName" .) .Values.storage.s3.existingSecret }}
      key: aws-access-key-id
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default (include "mediagate.secretName" .) .Values.storage.s3.existingSecret }}
      key: aws-secret-access-key
{{- end }}
{{- end }}

{{/* Checks that stop a broken release before it reaches the cluster. */}}
{{- define "mediagate.validate" -}}
{{- $replicas := int .Values.replicaCount }}
{{- if and (or (gt $replicas 1) .Values.autoscaling.enabled) (not (include "mediagate.redis" .)) }}
{{- fail "more than one pod needs a shared store: set store.url (Redis) or store.existingSecret" }}
{{- end }}
{{- if and .Values.storage.s3.accessKeyId (not .Values.storage.s3.secretAccessKey) }}
{{- fail "storage.s3.accessKeyId needs storage.s3.secretAccessKey" }}
{{- end }}
{{- if and (include "mediagate.volume" .) (not .Values.persistence.enabled) (or (gt $replicas 1) .Values.autoscaling.enabled) }}
{{- fail "persistence.enabled=false with more than one pod: each pod would keep files of its own; use storage.s3.url" }}
{{- end }}
{{- if and (not .Values.admin.token) (not .Values.admin.existingSecret) }}
{{- fail "set admin.token (at least 16 characters) or admin.existingSecret" }}
{{- end }}
{{- if .Values.store.cache.enabled }}
{{- if not (include "mediagate.redis" .) }}
{{- fail "store.cache.enabled needs a Redis store: set store.url or store.existingSecret" }}
{{- end }}
{{- end }}
{{- end }}
