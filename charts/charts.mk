# The Helm chart: helm lint, make deploy / undeploy (charts/lws).
