#!/usr/bin/env node
// RFC 8785 (JCS) with npm `canonicalize` (not our code): one JSON document per input line, its canonical
// form as base64 per output line (base64 so that any byte, e.g. U+2028, survives the line protocol).
import { createInterface } from "node:readline";
import canonicalize from "canonicalize";

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  process.stdout.write(Buffer.from(canonicalize(JSON.parse(line)), "utf8").toString("base64") + "\n");
}
