# Local Kubernetes test cluster and the upstream LWS peer (tests/cluster/README.md).
# Included by the top-level Makefile; runnable alone: make -f tests/cluster/cluster.mk cluster-up
CLUSTER_SCRIPTS := $(CURDIR)/tests/cluster

.PHONY: cluster-build cluster-up cluster-down peer-up peer-down cluster-smoke

cluster-build: ## build etcd, kube-*, kubectl and kwok into $LWS_CACHE (once per version)
	bash $(CLUSTER_SCRIPTS)/build.sh all

cluster-up: ## start the local control plane + 16 kwok nodes (REAL_NODE=1: + 2 kubelet nodes); writes .cluster/kubeconfig and .cluster/env
	bash $(CLUSTER_SCRIPTS)/up.sh

cluster-down: ## stop our controllers on the cluster, the peer, real nodes and the cluster; empty .cluster/
	bash $(CLUSTER_SCRIPTS)/down.sh

peer-up: ## run upstream LWS against the cluster (refuses while our controller runs)
	bash $(CLUSTER_SCRIPTS)/peer-up.sh

peer-down: ## stop upstream LWS and remove its webhook configurations
	bash $(CLUSTER_SCRIPTS)/peer-down.sh

cluster-smoke: ## smoke-test the running cluster
	bash $(CLUSTER_SCRIPTS)/smoke.sh
