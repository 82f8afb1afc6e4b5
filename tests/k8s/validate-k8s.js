// Offline Kubernetes schema validation (kubernetes-models 4.5.1: Kubernetes 1.27 OpenAPI schemas,
// compiled validators). Usage: NODE_PATH=.../node_modules node validate-k8s.js FILE|-
// Prints one line per document and "N passed, N failed"; exit 1 on any invalid or unknown document.
// Limits: unknown (misspelled) fields pass unless a required one goes missing; no server-side rules.
const fs = require('fs');
const yaml = require('js-yaml');
let bad = 0, ok = 0;
for (const file of process.argv.slice(2)) {
  const docs = yaml.loadAll(fs.readFileSync(file === '-' ? 0 : file, 'utf8')).filter(Boolean);
  docs.forEach((doc, i) => {
    const where = `${file}#${i} ${doc.kind}/${doc.metadata && doc.metadata.name}`;
    if (!doc.apiVersion || !doc.kind) { console.log(`FAIL ${where}: missing apiVersion/kind`); bad++; return; }
    let Model;
    try { Model = require(`kubernetes-models/${doc.apiVersion}/${doc.kind}`)[doc.kind]; }
    catch (e) { console.log(`FAIL ${where}: unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`); bad++; return; }
    try { new Model(doc).validate(); ok++; console.log(`ok   ${where}`); }
    catch (e) { bad++; console.log(`FAIL ${where}: ${e.message}`); }
  });
}
console.log(`${ok} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);
