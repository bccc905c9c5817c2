# facts: read what the plan needs of one host, in one command: runs fact_NAME for each NAME in $facts.
for fact in $facts; do "fact_$fact"; done
