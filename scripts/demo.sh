#!/usr/bin/env bash
# The local cluster demo: sets up the machine (scripts/setup.sh), brings up a
# two-node dev cluster with the operator and agents, runs pods in two
# namespaces on both nodes, probes every pair with real packets, applies an
# EBPFNetworkPolicy (examples/ebpfnetworkpolicy.yaml), waits until every
# node enforces it, and probes again; then an HTTP rule (examples/http.yaml):
# a 200 and a 403 side by side, through the node's proxy.
# The cluster stays up afterwards; `bin/palisade dev down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
palisade=bin/palisade
eval "$($palisade dev up --nodes 2)"

echo "== Namespaces shop and tools, pods on both nodes"
for ns in shop tools; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
  # Admitting a pod needs the namespace's default ServiceAccount, which the controller manager creates.
  until kubectl get serviceaccount default -n "$ns" >/dev/null 2>&1; do sleep 0.2; done
done
run_pod() { # namespace name app node
  kubectl get pod "$2" -n "$1" >/dev/null 2>&1 ||
    kubectl run "$2" -n "$1" --image=demo --port=8080 --labels="app=$3" \
      --overrides="{\"spec\":{\"nodeName\":\"$4\"}}"
}
run_pod shop frontend frontend palisade-node-1
run_pod shop api api palisade-node-2
run_pod shop worker worker palisade-node-1
run_pod tools debug debug palisade-node-2
kubectl wait --for=condition=Ready pod --all -n shop --timeout=60s
kubectl wait --for=condition=Ready pod --all -n tools --timeout=60s
kubectl get pods -A -o wide
$palisade wait --for=programmed --timeout 60s

echo
echo "== Before any policy: TCP 8080 between every pair of pods (real packets)"
$palisade probe matrix --namespaces shop,tools --port 8080 --protocol TCP -o table

echo
echo "== Applying examples/ebpfnetworkpolicy.yaml: shop/api accepts TCP 8080 only from shop/frontend"
kubectl apply -f examples/ebpfnetworkpolicy.yaml
$palisade wait --for=programmed --timeout 60s

echo
echo "== After: only shop/frontend reaches shop/api"
$palisade probe matrix --namespaces shop,tools --port 8080 --protocol TCP -o table

echo
echo "== HTTP rules: examples/http.yaml puts shop/catalog behind GET /public/ from shop/frontend, and denies /admin"
kubectl apply -f examples/http.yaml
kubectl wait --for=condition=Ready pod/catalog -n shop --timeout=60s
$palisade wait --for=programmed --timeout 60s
frontend_netns=$(kubectl get pod frontend -n shop -o jsonpath='{.metadata.annotations.palisade\.dev/sandbox-netns}')
catalog_ip=$(kubectl get pod catalog -n shop -o jsonpath='{.status.podIP}')
for path in /public/items /admin/users /public/../admin/users; do
  # One request per path from shop/frontend's network namespace, through the proxy of catalog's node.
  printf '  GET %-24s -> ' "$path"
  ip netns exec "$frontend_netns" curl -sS --path-as-is --max-time 5 -o /dev/null -w '%{http_code}\n' "http://$catalog_ip:8080$path"
done

echo
echo "== Where to look next"
cat <<NEXT
  export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$(command -v kubectl)"):\$PATH
  kubectl get ebpfnps -A               # Accepted, Programmed, k/n nodes
  $palisade status                 # nodes, agent reports, policy conditions
  $palisade probe --from tools/debug --to shop/api --port 8080 -o json
  $palisade explain -f examples/demo.yaml -o table   # the same questions answered offline, with reasons
  curl http://10.240.0.2:9963/metrics | grep palisade_proxy_requests_total   # node 2's proxy: requests by verdict, policy, rule
  $palisade dev down               # stop everything, remove the state
NEXT
