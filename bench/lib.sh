# Shared helpers of the benchmark scripts (source it; needs $troupe set to the CLI).

# metric_median METRIC FROM RUN_DIR...: the median of METRIC over the steps >= FROM of every run directory given
# (all their values pooled), from `troupe log RUN --metric METRIC` (CSV: step,value).
metric_median() {
  local metric=$1 from=$2
  shift 2
  for r in "$@"; do "$troupe" log "$r" --metric "$metric" | awk -F, -v from="$from" 'NR>1 && $1>=from {print $2}'; done |
    sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
}
