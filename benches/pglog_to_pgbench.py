#!/usr/bin/env python3
"""Turns the transactions clerk-proxy sent, as PostgreSQL logged them with
log_statement = 'all', into pgbench scripts that send the same statements.

    pglog_to_pgbench.py SERVER_LOG START_OFFSET OUT_DIR

Reads SERVER_LOG from byte START_OFFSET (stderr format, the default
log_line_prefix '%m [%p] '). Each BEGIN .. COMMIT/ROLLBACK of one backend
is one transaction; each parameter ($n, sent by the proxy typed text) is
written as the literal it had, '...'::text. Writes, per transaction,
OUT_DIR/<path>_<n>.sql (statement by statement) and
OUT_DIR/<path>_<n>_pipelined.sql (the same between \\startpipeline and
\\endpipeline, as the proxy pipelines them), where <path> is its
request.path setting made a file name (/rpc/customer_tier ->
rpc_customer_tier) and n counts from 001 in log order. Prints one line per
file group: path, transactions.
"""
import collections
import os
import re
import sys

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (\w+):  (.*)$")
PARAM = re.compile(r"\$(\d+) = (NULL|'((?:[^']|'')*)')(?:, |$)", re.S)
PLACEHOLDER = re.compile(r"\$(\d+)\b")
# pgbench reads :name in a script as a variable.
PGBENCH_VARIABLE = re.compile(r"(?<!:):[A-Za-z_\x80-\uffff]")


def records(text):
    """(pid, level, message) per log record; continuation lines (a tab
    first) belong to the record before them."""
    record = None
    for line in text.split("\n"):
        m = LINE.match(line)
        if m:
            if record:
                yield record
            record = [m.group(1), m.group(2), m.group(3)]
        elif record and line.startswith("\t"):
            record[2] += "\n" + line[1:]
    if record:
        yield record


def parameters(detail):
    values, pos = {}, 0
    while pos < len(detail):
        m = PARAM.match(detail, pos)
        if not m:
            raise SystemExit(f"cannot read the parameters: {detail!r}")
        values[m.group(1)] = "NULL::text" if m.group(2) == "NULL" else f"'{m.group(3)}'::text"
        pos = m.end()
    return values


def main():
    log, start, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(log, encoding="utf-8") as f:
        f.seek(start)
        text = f.read()
    open_tx = {}  # pid -> [statement, ...]
    pending = {}  # pid -> (statement text waiting for its DETAIL parameters)
    done = []
    for pid, level, message in records(text):
        if level == "DETAIL" and message.startswith("parameters: ") and pid in pending:
            sql = pending.pop(pid)
            values = parameters(message[len("parameters: "):])
            open_tx[pid][-1] = PLACEHOLDER.sub(lambda m: values[m.group(1)], sql)
            continue
        if level != "LOG":
            continue
        m = re.match(r"(?:statement|execute [^:]*): (.*)$", message, re.S)
        if not m:
            continue
        sql = m.group(1).strip()
        pending.pop(pid, None)
        if re.match(r"BEGIN\b", sql, re.I):
            open_tx[pid] = [sql]
        elif pid in open_tx:
            open_tx[pid].append(sql)
            if message.startswith("execute") and PLACEHOLDER.search(sql):
                pending[pid] = sql
            if re.match(r"(COMMIT|ROLLBACK)\b", sql, re.I):
                done.append(open_tx.pop(pid))
    groups = collections.defaultdict(list)
    for tx in done:
        path = re.search(r"set_config\('request\.path', '([^']*)'::text", tx[1])
        if not path:
            continue
        groups[re.sub(r"[^A-Za-z0-9]+", "_", path.group(1)).strip("_") or "root"].append(tx)
    os.makedirs(out, exist_ok=True)
    for name, txs in groups.items():
        for i, tx in enumerate(txs, 1):
            for statement in tx:
                if PGBENCH_VARIABLE.search(statement):
                    raise SystemExit(f"pgbench would read a :variable in: {statement}")
            body = "".join(s.rstrip(";") + ";\n" for s in tx)
            with open(os.path.join(out, f"{name}_{i:03d}.sql"), "w", encoding="utf-8") as f:
                f.write(body)
            with open(os.path.join(out, f"{name}_{i:03d}_pipelined.sql"), "w", encoding="utf-8") as f:
                f.write("\\startpipeline\n" + body + "\\endpipeline\n")
        print(name, len(txs))


if __name__ == "__main__":
    main()
