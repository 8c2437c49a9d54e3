# The Helm chart: helm lint, make deploy / undeploy (charts/lws).
# helm is built from its Go module by charts/helm.sh into $LWS_CACHE (once per version).
CHART := charts/lws
CHART_CRD := $(CHART)/crds/leaderworkerset.x-k8s.io_leaderworkersets.yaml
CHART_OUT := target/chart

.PHONY: helm helm-lint chart-crd deploy undeploy

helm: ## build helm v3.22.0 from its Go module into $LWS_CACHE/bin (skipped when cached)
	@bash charts/helm.sh >/dev/null

chart-crd: build ## regenerate the chart's CRD from `lws crd`
	$(LWS) crd > $(CHART_CRD)
	@echo "[chart] $(CHART_CRD) regenerated"

# lint; render both certificate modes; then the parity tests (host/tests/chart.rs), which must
# find helm here: LWS_HELM_REQUIRED turns their skip into a failure.
helm-lint: build ## helm lint, helm template (internal and cert-manager), chart parity with `lws install`
	@set -euo pipefail; H=$$(bash charts/helm.sh); mkdir -p $(CHART_OUT); \
	  $$H lint --strict $(CHART); \
	  $$H lint --strict $(CHART) --set certManagement.mode=cert-manager; \
	  $$H template lws $(CHART) -n lws-system --include-crds > $(CHART_OUT)/internal.yaml; \
	  $$H template lws $(CHART) -n lws-system --include-crds --set certManagement.mode=cert-manager > $(CHART_OUT)/cert-manager.yaml; \
	  echo "[chart] rendered $(CHART_OUT)/internal.yaml ($$(grep -c '^kind:' $(CHART_OUT)/internal.yaml) objects), $(CHART_OUT)/cert-manager.yaml ($$(grep -c '^kind:' $(CHART_OUT)/cert-manager.yaml))"; \
	  LWS_HELM=$$H LWS_HELM_REQUIRED=1 $(CARGO) test --profile $(PROFILE) -p lws-host --test chart

deploy: ## the chart on the current cluster (KUBECONFIG or the local one): image into real nodes, helm upgrade --install
	@bash charts/deploy.sh deploy

undeploy: ## helm uninstall, then check no webhook configuration, RBAC, Secret or Lease is left
	@bash charts/deploy.sh undeploy
