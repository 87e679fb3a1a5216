// The Web Forms engine expects a browser: give Node the DOM globals it uses, from jsdom.
import { JSDOM } from 'jsdom';

const GLOBALS = [
  'document', 'DOMParser', 'XMLSerializer', 'Node', 'Element', 'Document', 'XMLDocument',
  'Attr', 'Text', 'CDATASection', 'Comment', 'ProcessingInstruction', 'NodeFilter',
  'XPathResult', 'HTMLElement', 'DocumentFragment',
];

export function installDom() {
  const { window } = new JSDOM('');
  globalThis.window ??= window;
  for (const name of GLOBALS) {
    if (globalThis[name] === undefined && window[name] !== undefined) {
      globalThis[name] = window[name];
    }
  }
  // The bundled tree-sitter (emscripten) sees `process`, takes its Node path and reads
  // __dirname, which ES modules lack; its WASM is inlined, so no file is read from there.
  globalThis.__dirname ??= process.cwd();
}
