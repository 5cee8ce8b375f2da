#!/usr/bin/env bash
# Baseline (a): the flow on RunComfy's API page, done with curl and jq.
# Submit, poll /status every second, fetch /result, download each image.
# Usage: baseline_curl.sh PROMPT NUM_IMAGES OUTPUT_DIR   (with NANOBANANA_BASE_URL and RUNCOMFY_API_TOKEN set)
set -euo pipefail
prompt=$1 num_images=$2 out=$3
api=${NANOBANANA_BASE_URL}/v1
auth="Authorization: Bearer ${RUNCOMFY_API_TOKEN}"
body=$(jq -n --arg p "$prompt" --argjson n "$num_images" '{prompt: $p, num_images: $n}')
id=$(curl -sS --fail --request POST --url "$api/models/google/nano-banana/text-to-image" \
  --header "Content-Type: application/json" --header "$auth" --data "$body" | jq -r .request_id)
while :; do
  status=$(curl -sS --fail --url "$api/requests/$id/status" --header "$auth" | jq -r .status)
  case $status in completed) break ;; cancelled) exit 5 ;; esac
  sleep 1
done
result=$(curl -sS --fail --url "$api/requests/$id/result" --header "$auth")
[ "$(jq -r .status <<<"$result")" = succeeded ] || exit 5
mkdir -p "$out"
i=0
for url in $(jq -r '.output.images[]' <<<"$result"); do
  i=$((i + 1))
  curl -sS --fail --output "$out/$id-$i.png" "$url"
done
echo "$id"
