#!/usr/bin/env node
// The installed `quail` command. It exists before the TypeScript build so that
// package managers can link it at install time; the command itself is dist/cli.js.
import '../dist/cli.js';
