// tap coverage map: test files that run the gateway in child processes (through tsx,
// or the built dist/) contribute no coverage, because the children's source maps do
// not merge with those of the test processes (the merged report was wrong on a fresh
// clone). Everything they exercise is also covered in process by other test files.
const childProcessTests = /(config-process|dev-token|relay-process|topologies\/tls|client\/restart|deploy\/image-cmd)\.test\.ts$/

export default function coverageMap (testFile) {
  return childProcessTests.test(testFile) ? null : []
}
