#!/usr/bin/env bash
# Contender 1: the flow shown on RunComfy's Model API pages, done with curl (and jq to read JSON).
# Submit; GET /status once a second until it says completed; GET /result; download the images.
#
# Usage: baseline_curl.sh PROMPT NUM_IMAGES OUTPUT_DIR [POLL_SECONDS]
#   (with NANOBANANA_BASE_URL and RUNCOMFY_API_TOKEN set; POLL_SECONDS defaults to 1, the docs'
#   cadence; run.py passes a smaller one only in its --tiny smoke configuration)
# Prints the request id on stdout. Exit 5 if the job did not succeed.
set -euo pipefail
prompt=$1 num_images=$2 out=$3 poll=${4:-1}
api=${NANOBANANA_BASE_URL}/v1
auth="Authorization: Bearer ${RUNCOMFY_API_TOKEN}"

body=$(jq -n --arg p "$prompt" --argjson n "$num_images" '{prompt: $p, num_images: $n}')
id=$(curl -sS --fail --request POST --url "$api/models/google/nano-banana/text-to-image" \
  --header "Content-Type: application/json" --header "$auth" --data "$body" | jq -r .request_id)

# The docs' loop: status first (it is the cheap endpoint and reports the queue position), result after.
while :; do
  status=$(curl -sS --fail --url "$api/requests/$id/status" --header "$auth" | jq -r .status)
  case $status in
    completed) break ;;
    cancelled) echo "job $id was cancelled" >&2; exit 5 ;;
  esac
  sleep "$poll"
done
result=$(curl -sS --fail --url "$api/requests/$id/result" --header "$auth")
if [ "$(jq -r .status <<<"$result")" != succeeded ]; then
  echo "job $id: $(jq -c .error <<<"$result")" >&2
  exit 5
fi

# All images in ONE curl process with --parallel (concurrent transfers, no token sent to the file
# host). A shell loop with one curl per file would be slower; the benchmark should not be won
# against a strawman.
mkdir -p "$out"
args=()
i=0
while IFS= read -r url; do
  i=$((i + 1))
  args+=(--output "$out/$id-$i.png" --url "$url")
done < <(jq -r '.output.images[]' <<<"$result")
curl -sS --fail --parallel "${args[@]}"
echo "$id"
