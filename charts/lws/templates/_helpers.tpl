{{/*
Names are fixed rather than derived from the release: the controller looks its Secret and webhook
configurations up by these names, and its RBAC grants them by name (host/src/install.rs).
*/}}

{{/* Helm's own labels: on metadata only, never in a selector. */}}
{{- define "lws.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* Every object's labels. */}}
{{- define "lws.labels" -}}
app.kubernetes.io/name: lws
{{ include "lws.helmLabels" . }}
{{- end }}

{{/* The controller pods' labels, and the selector of its Deployment and Services. */}}
{{- define "lws.selectorLabels" -}}
app.kubernetes.io/name: lws
app.kubernetes.io/component: controller
{{- end }}

{{/* True (non-empty) when cert-manager issues the serving certificate. */}}
{{- define "lws.certManager" -}}
{{- $mode := .Values.certManagement.mode -}}
{{- if not (has $mode (list "internal" "cert-manager")) -}}
{{- fail (printf "certManagement.mode must be internal or cert-manager, not %q" $mode) -}}
{{- end -}}
{{- if eq $mode "cert-manager" }}true{{ end -}}
{{- end }}

{{- define "lws.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
One webhook entry (host/src/install.rs `webhook`): upstream's name, path and rules, failurePolicy
Fail, sideEffects None. The pod webhooks see only pods with the LWS name label, so failing closed
cannot block other pods. No caBundle: the controller (internal mode) or cert-manager's CA injector
writes it. Called with a dict: ns, name, path, group, resource, operations.
*/}}
{{- define "lws.webhook" }}
  - name: {{ .name }}
    admissionReviewVersions: [v1]
    clientConfig:
      service:
        name: lws-webhook-service
        namespace: {{ .ns }}
        path: {{ .path }}
        port: 443
    failurePolicy: Fail
    sideEffects: None
    rules:
      - apiGroups: [{{ .group | quote }}]
        apiVersions: [v1]
        operations: [{{ join ", " .operations }}]
        resources: [{{ .resource }}]
    {{- if eq .resource "pods" }}
    objectSelector:
      matchExpressions:
        - key: leaderworkerset.sigs.k8s.io/name
          operator: Exists
    {{- end }}
{{- end }}
