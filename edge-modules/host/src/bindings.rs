//! Host bindings generated from the `edge-host` world of `wit/edge.wit`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "edge-host",
    additional_derives: [PartialEq],
});
