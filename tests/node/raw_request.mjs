// One gRPC call over raw HTTP/2, with header values a gRPC library would refuse to send (non-ASCII,
// control characters): `node raw_request.mjs ADDRESS PATH HEADERS_JSON` where HEADERS_JSON maps header
// names to hex-encoded bytes. The request message is empty. Prints the response headers and trailers
// as JSON.
import http2 from "node:http2";

const [address, path, headersJson] = process.argv.slice(2);
const extra = Object.fromEntries(
  Object.entries(JSON.parse(headersJson)).map(([k, v]) => [k, Buffer.from(v, "hex").toString("latin1")]),
);
const client = http2.connect(`http://${address}`);
const request = client.request({
  ":method": "POST",
  ":path": path,
  "content-type": "application/grpc",
  te: "trailers",
  ...extra,
});
const seen = {};
request.on("response", (headers) => Object.assign(seen, headers));
request.on("trailers", (trailers) => Object.assign(seen, trailers));
request.on("data", () => {});
request.on("end", () => {
  console.log(JSON.stringify(seen));
  client.close();
});
request.on("error", (err) => {
  console.log(JSON.stringify({ error: String(err) }));
  client.close();
});
request.end(Buffer.from([0, 0, 0, 0, 0]));
