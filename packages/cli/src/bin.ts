#!/usr/bin/env node
import { main } from './main.js';

// Exit explicitly: the WebGPU binding's global navigator keeps Node's event loop alive.
main().then(
  (code) => process.exit(code),
  () => process.exit(1),
);
