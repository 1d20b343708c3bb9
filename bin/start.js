#!/usr/bin/env node
// npm start: the whole stack on this machine (IoT Hub emulator, simulated fleet, local functions
// host, PGlite). Options: node bin/start.js --help
"use strict";
require("../local/register");
require("../local/start.ts");
