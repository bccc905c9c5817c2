# fact data: what registry.data_dir holds on this host: data_bytes=SIZE (du -sb; empty: no directory)
# and data_files=1 when it holds at least one file (a registry's images), else 0.
fact_data() {
  [ -d "$data_dir" ] || { echo "data_bytes="; echo "data_files=0"; return 0; }  # most nodes: no process
  echo "data_bytes=$(du -sb "$data_dir" 2>/dev/null | cut -f1)"
  [ -n "$(find "$data_dir" -type f 2>/dev/null | head -n 1)" ] && echo data_files=1 || echo data_files=0
}
