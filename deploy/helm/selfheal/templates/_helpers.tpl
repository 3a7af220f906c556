{{- define "selfheal.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "selfheal.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "selfheal.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "selfheal.secretName" -}}
{{- default (include "selfheal.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "selfheal.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "selfheal.env" -}}
- name: SELFHEAL_ENVIRONMENT
  value: {{ .Values.environment | quote }}
- name: SELFHEAL_LOG_FORMAT
  value: json
- name: SELFHEAL_CACHE_DIR
  value: /var/cache/selfheal
- name: SELFHEAL_ARTIFACTS_DIR
  value: /var/lib/selfheal/artifacts
{{- if .Values.publicUrl }}
- name: SELFHEAL_PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}
