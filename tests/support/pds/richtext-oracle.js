// Bluesky facet oracle for the differential test (tests/unit/domain/test_richtext_differential.py):
// reads one JSON string per line on stdin, writes one JSON line per input with the facets
// @atproto/api's RichText.detectFacetsWithoutResolution() makes of it (no network: mentions keep
// the handle where the DID would go). Lives beside start-pds.js so it resolves the same modules.
'use strict'
const readline = require('readline')
const { RichText } = require('@atproto/api')
const { version } = require('@atproto/api/package.json')

const short = (type) => type.slice('app.bsky.richtext.facet#'.length)
const value = (feature) => feature.uri ?? feature.did ?? feature.tag

process.stdout.write(JSON.stringify({ ready: true, atproto_api: version, node: process.version }) + '\n')
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
lines.on('line', (line) => {
  const rt = new RichText({ text: JSON.parse(line) })
  rt.detectFacetsWithoutResolution()
  const facets = (rt.facets || []).map((f) => {
    const feature = f.features[0]
    return [short(feature.$type), f.index.byteStart, f.index.byteEnd, value(feature)]
  })
  process.stdout.write(JSON.stringify(facets) + '\n')
})
