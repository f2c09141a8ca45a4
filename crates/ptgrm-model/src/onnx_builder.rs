//! ONNX graph builder (opset 17): the export backend of [`Ops`], and a small public API for
//! hand-building graphs (importers, test graphs).
//!
//! ```ignore
//! let mut b = OnnxBuilder::seeded(0);                      // or OnnxBuilder::with_params(map)
//! let x = b.input("image", &[N, Fixed(3), H, W]);           // DimSpec, see onnx_proto
//! let y = my_forward(&mut b, &x);                           // any fn generic over Ops
//! b.output(&y, "base", &[N, Fixed(3), H, W]);
//! let bytes = b.finish("base")?.encode_to_vec();
//! ```
//!
//! Values carry a partly known shape (`None` = dynamic axis) so shape mistakes in a model
//! surface at build time. Errors (missing parameter, shape mismatch) are recorded and returned
//! by [`OnnxBuilder::finish`]; the `Ops` methods themselves never fail.
//!
//! To add an op the trait lacks, call [`OnnxBuilder::node`] with the op type, input names,
//! attributes (see [`attr_int`] and friends) and the output's shape.

use crate::onnx_proto::{
    AttributeProto, AttributeType, DimSpec, GraphProto, IR_VERSION, ModelProto, NodeProto, OPSET, OperatorSetIdProto, TensorProto,
    ValueInfoProto,
};
use crate::ops::{Conv2d, Init, Ops};
use crate::params::{ParamMap, ParamValue, init_value};

/// A partly known shape: `None` marks an axis only known at run time.
pub type Shape = Vec<Option<usize>>;

/// A tensor in the graph under construction.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub shape: Shape,
}

impl Value {
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Static size of `axis`, if known.
    pub fn dim(&self, axis: usize) -> Option<usize> {
        self.shape.get(axis).copied().flatten()
    }
}

/// Where parameters come from.
#[derive(Clone, Debug)]
pub enum ParamSource {
    /// Created on first use by [`init_value`] with this seed.
    Seeded(u64),
    /// Taken from the map; a missing name or wrong shape is an error.
    Given(ParamMap),
}

pub struct OnnxBuilder {
    source: ParamSource,
    used: ParamMap,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    counter: usize,
    errors: Vec<String>,
    /// Name prefix of generated node and value names (for readable graphs).
    scope: String,
    /// Computed values declared as outputs: (value name, output name), applied by `finish`.
    renames: Vec<(String, String)>,
}

pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Int as i32), i: Some(v), ..Default::default() }
}

pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Ints as i32), ints: v.to_vec(), ..Default::default() }
}

pub fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Float as i32), f: Some(v), ..Default::default() }
}

pub fn attr_string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

impl OnnxBuilder {
    pub fn new(source: ParamSource) -> OnnxBuilder {
        OnnxBuilder {
            source,
            used: ParamMap::new(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            counter: 0,
            errors: Vec::new(),
            scope: String::new(),
            renames: Vec::new(),
        }
    }

    /// Parameters initialised from `seed` (see [`crate::params`]).
    pub fn seeded(seed: u64) -> OnnxBuilder {
        OnnxBuilder::new(ParamSource::Seeded(seed))
    }

    /// Parameters taken from a trained name -> value map.
    pub fn with_params(params: ParamMap) -> OnnxBuilder {
        OnnxBuilder::new(ParamSource::Given(params))
    }

    /// Every parameter the graph used so far, with its value.
    pub fn params(&self) -> &ParamMap {
        &self.used
    }

    /// Sets the prefix of generated names (cosmetic; helps reading a graph in Netron).
    pub fn set_scope(&mut self, scope: &str) {
        self.scope = scope.to_string();
    }

    /// Records a build error; [`finish`](Self::finish) reports it.
    pub fn fail(&mut self, msg: impl Into<String>) {
        self.errors.push(msg.into());
    }

    /// A fresh value name.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        if self.scope.is_empty() { format!("{hint}_{}", self.counter) } else { format!("{}/{hint}_{}", self.scope, self.counter) }
    }

    /// Declares a float32 graph input.
    pub fn input(&mut self, name: &str, dims: &[DimSpec]) -> Value {
        self.inputs.push(ValueInfoProto::tensor_f32(name, dims));
        let shape = dims.iter().map(|d| if let DimSpec::Fixed(n) = d { Some(*n) } else { None }).collect();
        Value { name: name.to_string(), shape }
    }

    /// Declares `v` as a graph output called `name`. A value some node of this graph computes
    /// is renamed to `name` when the graph is finished; anything else (an input, an
    /// initializer, a value already declared under another name) gets an Identity. Why: ONNX
    /// Runtime runs an Identity that feeds a graph output as a copy (about 1 ms per full
    /// 1280x736 frame, measured on the live denoiser's `base` output).
    pub fn output(&mut self, v: &Value, name: &str, dims: &[DimSpec]) {
        if dims.len() != v.rank() {
            self.fail(format!("output {name}: declared rank {} but the value has rank {}", dims.len(), v.rank()));
        }
        if v.name != name {
            let computed = self.nodes.iter().any(|n| n.output.contains(&v.name));
            let declared = self.outputs.iter().any(|o| o.name.as_deref() == Some(v.name.as_str()));
            let renamed = self.renames.iter().any(|(from, _)| *from == v.name);
            if computed && !declared && !renamed {
                self.renames.push((v.name.clone(), name.to_string()));
            } else {
                self.nodes.push(NodeProto {
                    input: vec![v.name.clone()],
                    output: vec![name.to_string()],
                    name: Some(format!("output_{name}")),
                    op_type: Some("Identity".into()),
                    ..Default::default()
                });
            }
        }
        self.outputs.push(ValueInfoProto::tensor_f32(name, dims));
    }

    /// Adds a float32 initializer under a fresh name.
    pub fn const_f32(&mut self, dims: &[usize], data: &[f32]) -> Value {
        let name = self.fresh("const");
        self.initializers.push(TensorProto::from_f32(&name, dims, data));
        Value { name, shape: dims.iter().map(|&d| Some(d)).collect() }
    }

    /// Adds an int64 initializer under a fresh name (shape operands, axes, pads).
    pub fn const_i64(&mut self, dims: &[usize], data: &[i64]) -> Value {
        let name = self.fresh("const");
        self.initializers.push(TensorProto::from_i64(&name, dims, data));
        Value { name, shape: dims.iter().map(|&d| Some(d)).collect() }
    }

    /// Adds a float32 initializer under a given name (parameters).
    pub fn initializer(&mut self, name: &str, dims: &[usize], data: &[f32]) -> Value {
        self.initializers.push(TensorProto::from_f32(name, dims, data));
        Value { name: name.to_string(), shape: dims.iter().map(|&d| Some(d)).collect() }
    }

    /// Adds a node with one output of the given shape. An input name "" is an omitted
    /// optional input.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>, shape: Shape) -> Value {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: Some(format!("{out}_node")),
            op_type: Some(op.to_string()),
            attribute: attrs,
            ..Default::default()
        });
        Value { name: out, shape }
    }

    /// Same-shape unary op.
    fn unary(&mut self, op: &str, x: &Value, attrs: Vec<AttributeProto>) -> Value {
        self.node(op, &[&x.name], attrs, x.shape.clone())
    }

    /// Same-rank numpy broadcasting of two shapes.
    fn broadcast(&mut self, op: &str, a: &Value, b: &Value) -> Shape {
        if a.rank() != b.rank() {
            self.fail(format!("{op}: ranks differ ({:?} vs {:?}); broadcasting needs equal ranks", a.shape, b.shape));
            return a.shape.clone();
        }
        let mut out = Vec::with_capacity(a.rank());
        for (i, (x, y)) in a.shape.iter().zip(&b.shape).enumerate() {
            out.push(match (*x, *y) {
                (Some(1), d) | (d, Some(1)) => d,
                (Some(p), Some(q)) if p != q => {
                    self.fail(format!("{op}: axis {i} sizes {p} and {q} do not broadcast ({} vs {})", a.name, b.name));
                    Some(p)
                }
                (Some(p), _) | (_, Some(p)) => Some(p),
                (None, None) => None,
            });
        }
        out
    }

    fn binary(&mut self, op: &str, a: &Value, b: &Value) -> Value {
        let shape = self.broadcast(op, a, b);
        self.node(op, &[&a.name, &b.name], vec![], shape)
    }

    /// `Shape(x)[start..end]` as a 1-D int64 value.
    pub fn shape_slice(&mut self, x: &Value, start: usize, end: usize) -> Value {
        let shape =
            self.node("Shape", &[&x.name], vec![attr_int("start", start as i64), attr_int("end", end as i64)], vec![Some(end - start)]);
        shape
    }

    /// `Shape(x)[axis]` as an int64 scalar.
    pub fn shape_scalar(&mut self, x: &Value, axis: usize) -> Value {
        let sh = self.node("Shape", &[&x.name], vec![], vec![Some(x.rank())]);
        let idx = self.const_i64(&[], &[axis as i64]);
        self.node("Gather", &[&sh.name, &idx.name], vec![attr_int("axis", 0)], vec![])
    }

    /// Bilinear resize to a fixed (height, width), half-pixel centres, no antialiasing (for
    /// prior encoders that want a fixed input size).
    pub fn resize_bilinear_to(&mut self, x: &Value, height: usize, width: usize) -> Value {
        let nc = self.shape_slice(x, 0, 2);
        let hw = self.const_i64(&[2], &[height as i64, width as i64]);
        let sizes = self.node("Concat", &[&nc.name, &hw.name], vec![attr_int("axis", 0)], vec![Some(4)]);
        let shape = vec![x.dim(0), x.dim(1), Some(height), Some(width)];
        self.node(
            "Resize",
            &[&x.name, "", "", &sizes.name],
            vec![attr_string("mode", "linear"), attr_string("coordinate_transformation_mode", "half_pixel")],
            shape,
        )
    }

    /// The finished model, or every error recorded while building it.
    pub fn finish(mut self, graph_name: &str) -> Result<ModelProto, String> {
        for (from, to) in &self.renames {
            for node in &mut self.nodes {
                for name in node.input.iter_mut().chain(node.output.iter_mut()) {
                    if name == from {
                        *name = to.clone();
                    }
                }
            }
        }
        if !self.errors.is_empty() {
            return Err(format!("building ONNX graph {graph_name:?}: {}", self.errors.join("; ")));
        }
        if self.outputs.is_empty() {
            return Err(format!("building ONNX graph {graph_name:?}: no outputs declared"));
        }
        Ok(ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
            producer_name: Some("ptgrm-model".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            graph: Some(GraphProto {
                node: self.nodes,
                name: Some(graph_name.to_string()),
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn spatial_out(len: Option<usize>, k: usize, conv: Conv2d) -> Option<usize> {
        len.and_then(|l| (l + 2 * conv.padding).checked_sub(k)).map(|v| v / conv.stride + 1)
    }
}

impl Ops for OnnxBuilder {
    type T = Value;

    fn param(&mut self, name: &str, shape: &[usize], init: Init) -> Value {
        if let Some(p) = self.used.get(name) {
            if p.shape != shape {
                self.fail(format!("parameter {name} requested twice with shapes {:?} and {shape:?}", p.shape));
            }
            return Value { name: name.to_string(), shape: shape.iter().map(|&d| Some(d)).collect() };
        }
        let value = match &self.source {
            ParamSource::Seeded(seed) => init_value(name, shape, init, *seed),
            ParamSource::Given(map) => match map.get(name) {
                Some(p) if p.shape == shape && p.data.len() == p.numel() => p.clone(),
                Some(p) => {
                    let msg = format!("parameter {name}: stored shape {:?} ({} values), model expects {shape:?}", p.shape, p.data.len());
                    self.fail(msg);
                    init_value(name, shape, Init::Const(0.0), 0)
                }
                None => {
                    self.fail(format!("parameter {name} (shape {shape:?}) is missing from the weights"));
                    init_value(name, shape, Init::Const(0.0), 0)
                }
            },
        };
        let v = self.initializer(name, shape, &value.data);
        self.used.insert(name.to_string(), value);
        v
    }

    fn constant(&mut self, shape: &[usize], data: &[f32]) -> Value {
        if shape.iter().product::<usize>() != data.len() {
            self.fail(format!("constant of shape {shape:?} given {} values", data.len()));
        }
        self.const_f32(shape, data)
    }

    fn conv2d(&mut self, x: &Value, weight: &Value, bias: Option<&Value>, conv: Conv2d) -> Value {
        if x.rank() != 4 || weight.rank() != 4 {
            self.fail(format!("conv2d: input {:?} and weight {:?} must be rank 4", x.shape, weight.shape));
            return x.clone();
        }
        let (cout, cin_g, kh, kw) = (weight.dim(0), weight.dim(1), weight.dim(2).unwrap_or(1), weight.dim(3).unwrap_or(1));
        if let (Some(c), Some(cg)) = (x.dim(1), cin_g) {
            if c != cg * conv.groups {
                self.fail(format!("conv2d {}: input has {c} channels, weight expects {cg} x {} groups", weight.name, conv.groups));
            }
        }
        let shape = vec![x.dim(0), cout, Self::spatial_out(x.dim(2), kh, conv), Self::spatial_out(x.dim(3), kw, conv)];
        let p = conv.padding as i64;
        let s = conv.stride as i64;
        let attrs = vec![
            attr_ints("kernel_shape", &[kh as i64, kw as i64]),
            attr_ints("strides", &[s, s]),
            attr_ints("pads", &[p, p, p, p]),
            attr_ints("dilations", &[1, 1]),
            attr_int("group", conv.groups as i64),
        ];
        match bias {
            Some(b) => self.node("Conv", &[&x.name, &weight.name, &b.name], attrs, shape),
            None => self.node("Conv", &[&x.name, &weight.name], attrs, shape),
        }
    }

    fn pad_replicate(&mut self, x: &Value, pad: usize) -> Value {
        let p = pad as i64;
        let pads = self.const_i64(&[8], &[0, 0, p, p, 0, 0, p, p]);
        let shape = vec![x.dim(0), x.dim(1), x.dim(2).map(|h| h + 2 * pad), x.dim(3).map(|w| w + 2 * pad)];
        self.node("Pad", &[&x.name, &pads.name], vec![attr_string("mode", "edge")], shape)
    }

    fn avg_pool(&mut self, x: &Value, k: usize) -> Value {
        let k64 = k as i64;
        let shape = vec![x.dim(0), x.dim(1), x.dim(2).map(|h| h / k), x.dim(3).map(|w| w / k)];
        self.node("AveragePool", &[&x.name], vec![attr_ints("kernel_shape", &[k64, k64]), attr_ints("strides", &[k64, k64])], shape)
    }

    fn pixel_shuffle(&mut self, x: &Value, r: usize) -> Value {
        if let Some(c) = x.dim(1) {
            if c % (r * r) != 0 {
                self.fail(format!("pixel_shuffle({r}): {c} channels is not a multiple of {}", r * r));
            }
        }
        let shape = vec![x.dim(0), x.dim(1).map(|c| c / (r * r)), x.dim(2).map(|h| h * r), x.dim(3).map(|w| w * r)];
        match x.dim(1) {
            // The same permutation as a grouped ConvTranspose with 0/1 weights (kernel = stride
            // = r, one group per output channel, input channel c*r*r + i*r + j placed at (i, j)).
            // Why: ONNX Runtime's CPU DepthToSpace is a generic 6-D transpose; the ConvTranspose
            // scatter made the live graphs 7-10 % faster at 1280x720 with identical output
            // (docs/results-live.md, "DepthToSpace as ConvTranspose").
            Some(c) if c % (r * r) == 0 => {
                let (groups, rr) = (c / (r * r), r * r);
                let mut w = vec![0.0f32; c * rr];
                for ch in 0..c {
                    w[ch * rr + ch % rr] = 1.0;
                }
                let weight = self.const_f32(&[c, 1, r, r], &w);
                let k = r as i64;
                let attrs = vec![attr_ints("kernel_shape", &[k, k]), attr_ints("strides", &[k, k]), attr_int("group", groups as i64)];
                self.node("ConvTranspose", &[&x.name, &weight.name], attrs, shape)
            }
            _ => self.node("DepthToSpace", &[&x.name], vec![attr_int("blocksize", r as i64), attr_string("mode", "CRD")], shape),
        }
    }

    fn add(&mut self, a: &Value, b: &Value) -> Value {
        self.binary("Add", a, b)
    }

    fn sub(&mut self, a: &Value, b: &Value) -> Value {
        self.binary("Sub", a, b)
    }

    fn mul(&mut self, a: &Value, b: &Value) -> Value {
        self.binary("Mul", a, b)
    }

    fn div(&mut self, a: &Value, b: &Value) -> Value {
        self.binary("Div", a, b)
    }

    fn add_scalar(&mut self, x: &Value, s: f32) -> Value {
        let c = self.const_f32(&[], &[s]);
        self.node("Add", &[&x.name, &c.name], vec![], x.shape.clone())
    }

    fn mul_scalar(&mut self, x: &Value, s: f32) -> Value {
        let c = self.const_f32(&[], &[s]);
        self.node("Mul", &[&x.name, &c.name], vec![], x.shape.clone())
    }

    fn leaky_relu(&mut self, x: &Value, slope: f32) -> Value {
        self.unary("LeakyRelu", x, vec![attr_float("alpha", slope)])
    }

    fn relu(&mut self, x: &Value) -> Value {
        self.unary("Relu", x, vec![])
    }

    fn sigmoid(&mut self, x: &Value) -> Value {
        self.unary("Sigmoid", x, vec![])
    }

    fn erf(&mut self, x: &Value) -> Value {
        self.unary("Erf", x, vec![])
    }

    fn sqrt(&mut self, x: &Value) -> Value {
        self.unary("Sqrt", x, vec![])
    }

    fn clamp(&mut self, x: &Value, lo: f32, hi: f32) -> Value {
        let lo_name = if lo.is_finite() { self.const_f32(&[], &[lo]).name } else { String::new() };
        let hi_name = if hi.is_finite() { self.const_f32(&[], &[hi]).name } else { String::new() };
        let mut refs = vec![x.name.as_str(), lo_name.as_str(), hi_name.as_str()];
        while refs.last() == Some(&"") {
            refs.pop();
        }
        self.node("Clip", &refs, vec![], x.shape.clone())
    }

    fn mean_keepdim(&mut self, x: &Value, axes: &[usize]) -> Value {
        // The mean over channels of an NCHW tensor (LayerNorm) as a 1x1 conv with weights 1/C:
        // same function, but ONNX Runtime's conv kernels are far faster than a strided
        // ReduceMean over axis 1.
        if axes == [1] && x.rank() == 4 {
            if let Some(c) = x.dim(1) {
                let w = self.const_f32(&[1, c, 1, 1], &vec![1.0 / c as f32; c]);
                return self.conv2d(x, &w, None, Conv2d::same(1));
            }
        }
        let mut shape = x.shape.clone();
        for &a in axes {
            shape[a] = Some(1);
        }
        let axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        self.node("ReduceMean", &[&x.name], vec![attr_ints("axes", &axes), attr_int("keepdims", 1)], shape)
    }

    fn sum_keepdim(&mut self, x: &Value, axes: &[usize]) -> Value {
        let mut shape = x.shape.clone();
        for &a in axes {
            shape[a] = Some(1);
        }
        let axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
        let ax = self.const_i64(&[axes.len()], &axes);
        self.node("ReduceSum", &[&x.name, &ax.name], vec![attr_int("keepdims", 1)], shape)
    }

    fn softmax(&mut self, x: &Value, axis: usize) -> Value {
        self.unary("Softmax", x, vec![attr_int("axis", axis as i64)])
    }

    fn matmul(&mut self, a: &Value, b: &Value) -> Value {
        let r = a.rank();
        if r < 2 || b.rank() != r {
            self.fail(format!("matmul: ranks {} and {} (need equal, >= 2)", r, b.rank()));
            return a.clone();
        }
        if let (Some(k1), Some(k2)) = (a.dim(r - 1), b.dim(r - 2)) {
            if k1 != k2 {
                self.fail(format!("matmul: inner sizes {k1} and {k2} differ"));
            }
        }
        let mut shape = a.shape.clone();
        shape[r - 1] = b.dim(r - 1);
        self.node("MatMul", &[&a.name, &b.name], vec![], shape)
    }

    fn reshape(&mut self, x: &Value, shape: &[usize]) -> Value {
        let known: Option<usize> = x.shape.iter().copied().product();
        if known.is_some_and(|n| n != shape.iter().product::<usize>()) {
            self.fail(format!("reshape: {:?} to {shape:?} changes the element count", x.shape));
        }
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let target = self.const_i64(&[dims.len()], &dims);
        self.node("Reshape", &[&x.name, &target.name], vec![], shape.iter().map(|&d| Some(d)).collect())
    }

    fn transpose_last2(&mut self, x: &Value) -> Value {
        if x.rank() != 4 {
            self.fail(format!("transpose_last2: rank {} (need 4)", x.rank()));
        }
        let shape = vec![x.dim(0), x.dim(1), x.dim(3), x.dim(2)];
        self.node("Transpose", &[&x.name], vec![attr_ints("perm", &[0, 1, 3, 2])], shape)
    }

    fn concat(&mut self, xs: &[&Value]) -> Value {
        let Some(first) = xs.first() else {
            self.fail("concat of nothing");
            return Value { name: String::new(), shape: vec![] };
        };
        let mut shape = first.shape.clone();
        let mut c = Some(0usize);
        for x in xs {
            if x.rank() != first.rank() {
                self.fail(format!("concat: ranks differ ({:?} vs {:?})", first.shape, x.shape));
            }
            c = c.zip(x.dim(1)).map(|(a, b)| a + b);
        }
        shape[1] = c;
        let names: Vec<&str> = xs.iter().map(|x| x.name.as_str()).collect();
        self.node("Concat", &names, vec![attr_int("axis", 1)], shape)
    }

    fn slice_channels(&mut self, x: &Value, start: usize, end: usize) -> Value {
        if let Some(c) = x.dim(1) {
            if end > c || start >= end {
                self.fail(format!("slice_channels {start}..{end} of {c} channels"));
            }
        }
        let s = self.const_i64(&[1], &[start as i64]);
        let e = self.const_i64(&[1], &[end as i64]);
        let a = self.const_i64(&[1], &[1]);
        let mut shape = x.shape.clone();
        shape[1] = Some(end - start);
        self.node("Slice", &[&x.name, &s.name, &e.name, &a.name], vec![], shape)
    }

    fn split_heads(&mut self, x: &Value, heads: usize) -> Value {
        let Some(c) = x.dim(1) else {
            self.fail("split_heads: channel count must be static");
            return x.clone();
        };
        if heads == 0 || c % heads != 0 {
            self.fail(format!("split_heads: {c} channels do not split into {heads} heads"));
            return x.clone();
        }
        let target = self.const_i64(&[4], &[0, heads as i64, (c / heads) as i64, -1]);
        let hw = x.dim(2).zip(x.dim(3)).map(|(h, w)| h * w);
        self.node("Reshape", &[&x.name, &target.name], vec![], vec![x.dim(0), Some(heads), Some(c / heads), hw])
    }

    fn merge_heads(&mut self, x: &Value, like: &Value) -> Value {
        let sh = self.node("Shape", &[&like.name], vec![], vec![Some(4)]);
        let c = x.dim(1).zip(x.dim(2)).map(|(h, c)| h * c);
        if let (Some(a), Some(b)) = (c, like.dim(1)) {
            if a != b {
                self.fail(format!("merge_heads: {a} channels but like has {b}"));
            }
        }
        self.node("Reshape", &[&x.name, &sh.name], vec![], vec![x.dim(0), c, like.dim(2), like.dim(3)])
    }

    fn mean_hw(&mut self, x: &Value) -> Value {
        self.node("ReduceMean", &[&x.name], vec![attr_ints("axes", &[2, 3]), attr_int("keepdims", 0)], vec![x.dim(0), x.dim(1)])
    }

    fn unsqueeze_hw(&mut self, v: &Value) -> Value {
        let axes = self.const_i64(&[2], &[2, 3]);
        self.node("Unsqueeze", &[&v.name, &axes.name], vec![], vec![v.dim(0), v.dim(1), Some(1), Some(1)])
    }

    fn expand_hw(&mut self, v: &Value, like: &Value) -> Value {
        let u = self.unsqueeze_hw(v);
        let ones = self.const_i64(&[2], &[1, 1]);
        let hw = self.shape_slice(like, 2, 4);
        let target = self.node("Concat", &[&ones.name, &hw.name], vec![attr_int("axis", 0)], vec![Some(4)]);
        self.node("Expand", &[&u.name, &target.name], vec![], vec![v.dim(0), v.dim(1), like.dim(2), like.dim(3)])
    }

    fn unflatten_hw(&mut self, v: &Value, h: usize, w: usize) -> Value {
        if v.rank() != 2 {
            self.fail(format!("unflatten_hw: input {:?} must be rank 2", v.shape));
            return v.clone();
        }
        let c = v.dim(1).map(|n| n / (h * w));
        if v.dim(1).is_some_and(|n| n % (h * w) != 0) {
            self.fail(format!("unflatten_hw: {:?} is not a multiple of {h} x {w}", v.shape));
        }
        // 0 copies N (Reshape's default allowzero = 0), so the batch stays dynamic.
        let c_dim = c.map_or(-1, |c| c as i64);
        let target = self.const_i64(&[4], &[0, c_dim, h as i64, w as i64]);
        self.node("Reshape", &[&v.name, &target.name], vec![], vec![v.dim(0), c, Some(h), Some(w)])
    }

    fn resize_bilinear(&mut self, x: &Value, like: &Value) -> Value {
        let nc = self.shape_slice(x, 0, 2);
        let hw = self.shape_slice(like, 2, 4);
        let sizes = self.node("Concat", &[&nc.name, &hw.name], vec![attr_int("axis", 0)], vec![Some(4)]);
        self.node(
            "Resize",
            &[&x.name, "", "", &sizes.name],
            vec![attr_string("mode", "linear"), attr_string("coordinate_transformation_mode", "half_pixel")],
            vec![x.dim(0), x.dim(1), like.dim(2), like.dim(3)],
        )
    }

    fn linear(&mut self, x: &Value, weight: &Value, bias: Option<&Value>) -> Value {
        if x.rank() != 2 || weight.rank() != 2 {
            self.fail(format!("linear: input {:?} and weight {:?} must be rank 2", x.shape, weight.shape));
            return x.clone();
        }
        if let (Some(a), Some(b)) = (x.dim(1), weight.dim(1)) {
            if a != b {
                self.fail(format!("linear {}: input has {a} features, weight expects {b}", weight.name));
            }
        }
        let shape = vec![x.dim(0), weight.dim(0)];
        match bias {
            Some(b) => self.node("Gemm", &[&x.name, &weight.name, &b.name], vec![attr_int("transB", 1)], shape),
            None => self.node("Gemm", &[&x.name, &weight.name], vec![attr_int("transB", 1)], shape),
        }
    }

    fn coord_grid(&mut self, like: &Value) -> Value {
        // Integer Range then Cast: TensorRT rejects a float Range on run-time inputs.
        let axis_coords = |b: &mut OnnxBuilder, axis: usize| -> Value {
            let n = b.shape_scalar(like, axis);
            let zero = b.const_i64(&[], &[0]);
            let one = b.const_i64(&[], &[1]);
            let idx = b.node("Range", &[&zero.name, &n.name, &one.name], vec![], vec![like.dim(axis)]);
            let idx_f = b.node("Cast", &[&idx.name], vec![attr_int("to", 1)], vec![like.dim(axis)]);
            let nm1 = b.node("Sub", &[&n.name, &one.name], vec![], vec![]);
            let den = b.node("Max", &[&nm1.name, &one.name], vec![], vec![]);
            let den_f = b.node("Cast", &[&den.name], vec![attr_int("to", 1)], vec![]);
            let two = b.const_f32(&[], &[2.0]);
            let step = b.node("Div", &[&two.name, &den_f.name], vec![], vec![]);
            let scaled = b.node("Mul", &[&idx_f.name, &step.name], vec![], vec![like.dim(axis)]);
            let minus1 = b.const_f32(&[], &[-1.0]);
            b.node("Add", &[&scaled.name, &minus1.name], vec![], vec![like.dim(axis)])
        };
        let ys = axis_coords(self, 2);
        let xs = axis_coords(self, 3);
        let n = self.shape_slice(like, 0, 1);
        let one = self.const_i64(&[1], &[1]);
        let hw = self.shape_slice(like, 2, 4);
        let target = self.node("Concat", &[&n.name, &one.name, &hw.name], vec![attr_int("axis", 0)], vec![Some(4)]);
        let out_shape = vec![like.dim(0), Some(1), like.dim(2), like.dim(3)];
        let ax_x = self.const_i64(&[3], &[0, 1, 2]);
        let x_row = self.node("Unsqueeze", &[&xs.name, &ax_x.name], vec![], vec![Some(1), Some(1), Some(1), like.dim(3)]);
        let x_full = self.node("Expand", &[&x_row.name, &target.name], vec![], out_shape.clone());
        let ax_y = self.const_i64(&[3], &[0, 1, 3]);
        let y_col = self.node("Unsqueeze", &[&ys.name, &ax_y.name], vec![], vec![Some(1), Some(1), like.dim(2), Some(1)]);
        let y_full = self.node("Expand", &[&y_col.name, &target.name], vec![], out_shape);
        self.concat(&[&x_full, &y_full])
    }

    /// ONNX Resize (linear, half_pixel): the same function as the default composition (the
    /// half-pixel source coordinate clamped to the image, i.e. replicate edges), in one
    /// kernel instead of a 3x3 conv to factor² phases plus DepthToSpace.
    fn upsample_bilinear(&mut self, x: &Value, _channels: usize, factor: usize) -> Value {
        if factor == 1 {
            return x.clone();
        }
        let f = factor as f32;
        let scales = self.const_f32(&[4], &[1.0, 1.0, f, f]);
        let shape = vec![x.dim(0), x.dim(1), x.dim(2).map(|h| h * factor), x.dim(3).map(|w| w * factor)];
        self.node(
            "Resize",
            &[&x.name, "", &scales.name],
            vec![attr_string("mode", "linear"), attr_string("coordinate_transformation_mode", "half_pixel")],
            shape,
        )
    }

    /// ONNX InstanceNormalization (one fused kernel in ONNX Runtime) with unit scale and zero
    /// bias: the same function as the default composition.
    fn instance_norm(&mut self, x: &Value, eps: f32) -> Value {
        let Some(c) = x.dim(1) else {
            self.fail("instance_norm: channel count must be static");
            return x.clone();
        };
        let scale = self.const_f32(&[c], &vec![1.0; c]);
        let bias = self.const_f32(&[c], &vec![0.0; c]);
        self.node("InstanceNormalization", &[&x.name, &scale.name, &bias.name], vec![attr_float("epsilon", eps)], x.shape.clone())
    }
}

/// Convenience re-export so callers can write `OnnxBuilder` dims briefly.
pub use crate::onnx_proto::DimSpec as Dim;

/// Value of a parameter map entry as an ONNX initializer (for tools that patch weights).
pub fn param_tensor(name: &str, p: &ParamValue) -> TensorProto {
    TensorProto::from_f32(name, &p.shape, &p.data)
}
