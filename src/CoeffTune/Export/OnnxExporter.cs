using System.Reflection;
using System.Text.Json.Nodes;
using CoeffTune.Attention;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Models;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using DataType = Onnx.TensorProto.Types.DataType;

namespace CoeffTune.Export;

/// <summary>What an exported graph outputs.</summary>
public enum OnnxOutput
{
    /// <summary><c>logits</c> (batch, classes): the classification head's output.</summary>
    Logits,
    /// <summary><c>sentence_embedding</c> (batch, dim): the encoder's mean-pooled, L2-normalised token states (text models).</summary>
    SentenceEmbedding,
}

/// <summary>Settings of an export; everything but <see cref="Output"/> only goes into the graph's metadata.</summary>
public sealed record OnnxExportOptions
{
    public OnnxOutput Output { get; init; } = OnnxOutput.Logits;
    /// <summary>Class names in the head's order.</summary>
    public IReadOnlyList<string> Labels { get; init; } = Array.Empty<string>();
    /// <summary>The base model's name or path, as the adapter names it.</summary>
    public string? BaseName { get; init; }
    /// <summary>Text models: tokens per input the shipped tokenizer keeps.</summary>
    public int? MaxTokens { get; init; }
}

/// <summary>
/// Writes a model, with its adapter, as an ONNX graph that ONNX Runtime (or any runtime of opset
/// <see cref="Opset"/>) runs without CoeffTune. LoRA, DoRA and SSF are merged into the weights first; methods
/// that train the base weights (full, BitFit) need nothing more; Coeff-Tuning becomes an operation after every
/// attention Softmax: the maps (B, H, Nq, Nk) are flattened to (B, H, Nq*Nk), multiplied by alpha' (H, H) and
/// reshaped back, exactly the batched product the library computes, before the product with V.
/// </summary>
/// <remarks>
/// Text graphs take <c>input_ids</c>, <c>attention_mask</c> and <c>token_type_ids</c> (int64, batch x sequence,
/// both dynamic); image graphs take <c>pixel_values</c> (float, batch x C x H x W, batch dynamic). The attention
/// mask is applied as the library applies it: the most negative finite float added to the scores of padded keys.
/// Opset 17 is the first with LayerNormalization as a standard operator; GELU is written in its exact erf form
/// (a standard Gelu operator arrived only in opset 20), which is the form the models use.
/// </remarks>
public static class OnnxExporter
{
    public const int Opset = 17;
    /// <summary>The IR version that goes with opset 17 (ONNX 1.12).</summary>
    public const long IrVersion = 8;
    public const string FormatName = "coefftune-onnx";
    public const int FormatVersion = 1;

    /// <summary>Keys of the graph's metadata (ONNX metadata_props; ONNX Runtime's CustomMetadataMap).</summary>
    public static class MetadataKeys
    {
        public const string Format = "format", FormatVersion = "format_version", Architecture = "architecture", Output = "output",
            Labels = "labels", Recipe = "recipe", Methods = "methods", BaseModel = "base_model", BaseModelIdentity = "base_model_identity",
            Merged = "merged", Runtime = "runtime", MaxTokens = "max_tokens";
    }

    /// <summary>Names of the graph's inputs and outputs.</summary>
    public const string InputIds = "input_ids", AttentionMask = "attention_mask", TokenTypeIds = "token_type_ids",
        PixelValues = "pixel_values", LogitsName = "logits", SentenceEmbeddingName = "sentence_embedding";

    /// <summary>
    /// The adapted model as an ONNX graph. Merges the recipe's mergeable methods into <paramref name="peft"/>'s
    /// weights first (the model's output does not change; it stays merged). Fails, naming the method, for a
    /// method that is turned off or that has no ONNX form.
    /// </summary>
    public static ModelProto Build(PeftModel peft, OnnxExportOptions? options = null)
    {
        foreach (var m in peft.Methods)
        {
            if (!m.Enabled)
                throw new InvalidOperationException($"{m.Config.Method} is turned off (inside DisableAdapters?); export with every method on");
            if (!m.CanMerge && m is not CoeffMethod && m is not FrozenSubsetMethod)
                throw new InvalidOperationException($"{m.Config.Method} can neither be merged into the weights nor written as an ONNX operation");
        }
        peft.Merge();
        var methods = new JsonObject();
        foreach (var m in peft.Methods) methods[m.Config.Method] = m.Config.ToJson();
        var merged = peft.Methods.Where(m => m.CanMerge).Select(m => m.Config.Method);
        return BuildModel(peft.Classifier, options ?? new OnnxExportOptions(), peft.Recipe, peft.BaseIdentity, methods, string.Join("+", merged));
    }

    /// <summary>
    /// A model without a <see cref="PeftModel"/> (a base model, or one with Coeff-Tuning attached by
    /// <c>CoeffTuning.Apply</c>) as an ONNX graph. A model carrying LoRA, DoRA or SSF layers must go
    /// through its PeftModel, which merges them.
    /// </summary>
    public static ModelProto Build(TransformerClassifier model, OnnxExportOptions? options = null)
    {
        var hooked = model.named_parameters().Select(p => p.name)
            .FirstOrDefault(n => n.Contains(".lora_", StringComparison.Ordinal) || n.Contains(".ssf_", StringComparison.Ordinal)
                || n.Contains(".fact_", StringComparison.Ordinal) || n.Contains(".snell_", StringComparison.Ordinal)
                || n.Contains(".adapter.", StringComparison.Ordinal) || n.StartsWith("vpt.", StringComparison.Ordinal));
        if (hooked is not null)
            throw new InvalidOperationException($"the model has adapter layers ('{hooked}'); export it through its PeftModel, which merges them");
        return BuildModel(model, options ?? new OnnxExportOptions(), "none", PeftModel.Fingerprint(model), new JsonObject(), "");
    }

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> whole or not at all (temporary file, then rename); returns its size in bytes.</summary>
    public static long Write(ModelProto model, string path)
    {
        IO.AtomicFile.Write(path, tmp =>
        {
            using var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            model.WriteTo(file);
        });
        return new FileInfo(path).Length;
    }

    private static ModelProto BuildModel(TransformerClassifier model, OnnxExportOptions options, string recipe, string identity, JsonObject methods, string merged)
    {
        if (options.Output == OnnxOutput.SentenceEmbedding && model is not BertClassifier)
            throw new ArgumentException($"sentence embeddings are exported for text models; a {model.Architecture} model exports its logits");
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var g = new OnnxGraph($"coefftune-{model.Architecture}-{recipe}");
            var writer = new GraphWriter(g);
            switch (model)
            {
                case BertClassifier bert: writer.Text(bert, options.Output); break;
                case VisionTransformer vit: writer.Image(vit); break;
                default: throw new InvalidOperationException($"no ONNX export for {model.GetType().Name} ({model.Architecture})");
            }
            // Protobuf writes no message over 2 GB, and this exporter writes no external data files.
            if (g.InitializerBytes > int.MaxValue - (64L << 20))
                throw new InvalidOperationException($"the weights take {g.InitializerBytes / 1e9:F2} GB; a single ONNX file holds under 2 GB");

            var proto = new ModelProto
            {
                IrVersion = IrVersion,
                ProducerName = "CoeffTune",
                ProducerVersion = typeof(OnnxExporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "",
                Domain = "coefftune",
                ModelVersion = 1,
                DocString = $"{options.BaseName ?? model.Architecture} + {recipe}: {(options.Output == OnnxOutput.Logits ? "class logits" : "mean-pooled, L2-normalised sentence embedding")}"
                            + (writer.MixedLayers > 0 ? $"; Coeff-Tuning mixes the heads' attention maps after each of {writer.MixedLayers} Softmax nodes" : ""),
                Graph = g.Proto,
            };
            proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
            void Meta(string key, string? value)
            {
                if (value is not null) proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
            }
            Meta(MetadataKeys.Format, FormatName);
            Meta(MetadataKeys.FormatVersion, FormatVersion.ToString());
            Meta(MetadataKeys.Architecture, model.Architecture);
            Meta(MetadataKeys.Output, options.Output == OnnxOutput.Logits ? LogitsName : SentenceEmbeddingName);
            if (options.Output == OnnxOutput.Logits)
            {
                int classes = (int)model.Head.weight!.shape[0];
                var labels = options.Labels.Count == classes ? options.Labels : Enumerable.Range(0, classes).Select(i => i.ToString()).ToList();
                Meta(MetadataKeys.Labels, ConfigJson.Array(labels).ToJsonString());
            }
            Meta(MetadataKeys.Recipe, recipe);
            Meta(MetadataKeys.Methods, methods.ToJsonString());
            Meta(MetadataKeys.BaseModel, options.BaseName);
            Meta(MetadataKeys.BaseModelIdentity, identity);
            Meta(MetadataKeys.Merged, merged);
            Meta(MetadataKeys.Runtime, writer.MixedLayers > 0 ? $"coeff: alpha' mixes the attention maps of {writer.MixedLayers} layers after Softmax" : "");
            if (model is BertClassifier && options.MaxTokens is int max) Meta(MetadataKeys.MaxTokens, max.ToString());
            return proto;
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    /// <summary>The layers of the two architectures as ONNX nodes, named by their module paths.</summary>
    private sealed class GraphWriter(OnnxGraph g)
    {
        /// <summary>Attention layers whose maps are mixed by Coeff-Tuning.</summary>
        public int MixedLayers { get; private set; }

        public void Text(BertClassifier bert, OnnxOutput output)
        {
            var c = bert.Config;
            g.Input(InputIds, DataType.Int64, "batch", "sequence");
            g.Input(AttentionMask, DataType.Int64, "batch", "sequence");
            g.Input(TokenTypeIds, DataType.Int64, "batch", "sequence");

            // Embeddings: word + position + token type, then LayerNorm (BertEmbeddings.forward).
            var e = bert.embeddings;
            var word = g.Node("Gather", "embeddings.word_embeddings/Gather",
                [g.Weight("embeddings.word_embeddings.weight", e.word_embeddings.weight!), InputIds]);
            var length = g.Node("Shape", "embeddings/sequence_length", [InputIds], OnnxGraph.AttrInt("start", 1), OnnxGraph.AttrInt("end", 2));
            var positions = g.Node("Slice", "embeddings.position_embeddings/Slice",
                [g.Weight("embeddings.position_embeddings.weight", e.position_embeddings.weight!), g.Ints(0), length, g.Ints(0)]);
            var types = g.Node("Gather", "embeddings.token_type_embeddings/Gather",
                [g.Weight("embeddings.token_type_embeddings.weight", e.token_type_embeddings.weight!), TokenTypeIds]);
            var x = g.Node("Add", "embeddings/Add_types", [g.Node("Add", "embeddings/Add_positions", [word, positions]), types]);
            x = LayerNorm(x, e.norm, "embeddings.norm", c.LayerNormEps);

            // The additive key mask (MultiHeadAttention.AdditiveMask): 0 on real tokens, the most negative
            // finite float on padding, so softmax gives padded keys exactly zero weight; shape (B, 1, 1, N).
            var padding = g.Node("Not", "attention_mask/padding", [g.Node("Cast", "attention_mask/Cast_bool", [AttentionMask], OnnxGraph.AttrInt("to", (long)DataType.Bool))]);
            var additive = g.Node("Where", "attention_mask/additive", [padding, g.Float(float.MinValue), g.Float(0f)]);
            var mask = g.Node("Unsqueeze", "attention_mask/Unsqueeze", [additive, g.Ints(1, 2)]);

            for (int i = 0; i < bert.layers.Count; i++)
            {
                // Post-LN (BertLayer.forward): h = norm(x + attn(x)); x = norm(h + output(gelu(intermediate(h)))).
                var layer = bert.layers[i];
                var p = $"layers.{i}";
                var h = LayerNorm(g.Node("Add", $"{p}/Add_attention", [x, Attention(x, layer.attention, $"{p}.attention", mask)]),
                    layer.attention_norm, $"{p}.attention_norm", c.LayerNormEps);
                var f = Linear(Gelu(Linear(h, layer.intermediate, $"{p}.intermediate"), $"{p}.intermediate"), layer.output, $"{p}.output");
                x = LayerNorm(g.Node("Add", $"{p}/Add_output", [h, f]), layer.output_norm, $"{p}.output_norm", c.LayerNormEps);
            }

            // The model's pooling (BertClassifier.Pool): mean over real tokens, the [CLS] state, or BERT's tanh pooler on it.
            string Pool()
            {
                switch (c.Pooling)
                {
                    case Pooling.Mean: return MeanPool(x);
                    case Pooling.Cls: return g.Node("Gather", "pooling/cls", [x, g.IntScalar(0)], OnnxGraph.AttrInt("axis", 1));
                    case Pooling.Pooler:
                        var cls = g.Node("Gather", "pooling/cls", [x, g.IntScalar(0)], OnnxGraph.AttrInt("axis", 1));
                        return g.Node("Tanh", "pooler/Tanh", [Linear(cls, bert.pooler ?? throw new InvalidOperationException("pooler pooling without pooler weights"), "pooler")]);
                    default:
                        throw new NotSupportedException($"exporting {SentencePooling.Name(c.Pooling)} pooling is not supported (mean, cls and pooler are)");
                }
            }

            if (output == OnnxOutput.SentenceEmbedding)
            {
                // nn.functional.normalize(p: 2, dim: 1): x / max(||x||, 1e-12).
                var pooled = Pool();
                var squares = g.Node("Mul", "normalize/Mul", [pooled, pooled]);
                var norm = g.Node("Sqrt", "normalize/Sqrt", [g.Node("ReduceSum", "normalize/ReduceSum", [squares, g.Ints(1)], OnnxGraph.AttrInt("keepdims", 1))]);
                g.Node("Div", SentenceEmbeddingName, [pooled, g.Node("Max", "normalize/Max", [norm, g.Float(1e-12f)])]);
                g.Output(SentenceEmbeddingName, DataType.Float, "batch", c.Dim);
                return;
            }
            Head(Pool(), bert.classifier, bert.HeadName);
        }

        public void Image(VisionTransformer vit)
        {
            var c = vit.Config;
            g.Input(PixelValues, DataType.Float, "batch", c.Channels, c.ImageSize, c.ImageSize);

            // Patches: a convolution with kernel = stride = patch size, (B, D, h, w) -> (B, h*w, D) (PatchEmbedding.forward).
            var proj = vit.patch_embed.proj;
            var conv = g.Node("Conv", "patch_embed.proj/Conv",
                [PixelValues, g.Weight("patch_embed.proj.weight", proj.weight!), g.Weight("patch_embed.proj.bias", proj.bias!)],
                OnnxGraph.AttrInts("kernel_shape", c.PatchSize, c.PatchSize), OnnxGraph.AttrInts("strides", c.PatchSize, c.PatchSize));
            var patches = g.Node("Transpose", "patch_embed/Transpose",
                [g.Node("Reshape", "patch_embed/Reshape", [conv, g.Ints(0, c.Dim, -1)])], OnnxGraph.AttrInts("perm", 0, 2, 1));

            // The class token, expanded over the batch, before the patches; then the position embedding.
            var batch = g.Node("Shape", "cls_token/batch", [PixelValues], OnnxGraph.AttrInt("start", 0), OnnxGraph.AttrInt("end", 1));
            var clsShape = g.Node("Concat", "cls_token/shape", [batch, g.Ints(1, c.Dim)], OnnxGraph.AttrInt("axis", 0));
            var cls = g.Node("Expand", "cls_token/Expand", [g.Weight("cls_token", vit.cls_token), clsShape]);
            var x = g.Node("Add", "pos_embed/Add",
                [g.Node("Concat", "tokens/Concat", [cls, patches], OnnxGraph.AttrInt("axis", 1)), g.Weight("pos_embed", vit.pos_embed)]);

            for (int i = 0; i < vit.blocks.Count; i++)
            {
                // Pre-LN (VitBlock.forward): x = x + attn(norm1(x)); x = x + mlp(norm2(x)).
                var block = vit.blocks[i];
                var p = $"blocks.{i}";
                x = g.Node("Add", $"{p}/Add_attention", [x, Attention(LayerNorm(x, block.norm1, $"{p}.norm1", c.LayerNormEps), block.attn, $"{p}.attn", mask: null)]);
                var hidden = Gelu(Linear(LayerNorm(x, block.norm2, $"{p}.norm2", c.LayerNormEps), block.mlp.fc1, $"{p}.mlp.fc1"), $"{p}.mlp.fc1");
                x = g.Node("Add", $"{p}/Add_mlp", [x, Linear(hidden, block.mlp.fc2, $"{p}.mlp.fc2")]);
            }
            x = LayerNorm(x, vit.norm, "norm", c.LayerNormEps);
            Head(g.Node("Gather", "pooling/cls", [x, g.IntScalar(0)], OnnxGraph.AttrInt("axis", 1)), vit.head, vit.HeadName);
        }

        /// <summary>
        /// MultiHeadAttention.forward for self-attention: heads split, q scaled by 1/sqrt(d), softmax over the
        /// masked scores, the layer's enabled map transforms in order (Coeff-Tuning's mixing), product with V,
        /// heads merged, output projection.
        /// </summary>
        private string Attention(string x, MultiHeadAttention attention, string path, string? mask)
        {
            long heads = attention.Heads, dh = attention.HeadDim;
            var split = g.Ints(0, 0, heads, dh);
            string Heads(string name, string t, params long[] perm) =>
                g.Node("Transpose", $"{path}/{name}_heads", [g.Node("Reshape", $"{path}/{name}_split", [t, split])], OnnxGraph.AttrInts("perm", perm));
            var q = Heads("q", Linear(x, attention.query, $"{path}.query"), 0, 2, 1, 3);                    // (B, H, N, dh)
            var kT = Heads("k", Linear(x, attention.key, $"{path}.key"), 0, 2, 3, 1);                       // (B, H, dh, N)
            var v = Heads("v", Linear(x, attention.value, $"{path}.value"), 0, 2, 1, 3);                    // (B, H, N, dh)
            var scaled = g.Node("Mul", $"{path}/q_scaled", [q, g.Float((float)(1.0 / Math.Sqrt(dh)))]);
            var scores = g.Node("MatMul", $"{path}/scores", [scaled, kT]);
            if (mask is not null) scores = g.Node("Add", $"{path}/scores_masked", [scores, mask]);
            var maps = g.Node("Softmax", $"{path}/Softmax", [scores], OnnxGraph.AttrInt("axis", -1));       // F, (B, H, N, N)

            // The enabled map transforms in the layer's order; each must have an ONNX form.
            string? mapsShape = null;
            bool mixed = false;
            foreach (var (name, transform) in attention.NamedMapTransforms.Where(t => t.Transform.Enabled))
            {
                switch (transform)
                {
                    case CoeffMixing mixing:
                        // Fhat^h = sum_i alpha'[h, i] F^i as the library computes it (RecomputedMixedAttention.Mix):
                        // (H, H) @ (B, H, N*N), then back to (B, H, N, N). alpha' is the layer's own evaluation-mode
                        // matrix (I + alpha in the residual form), read from CoeffMixing, not recomputed here.
                        var alphaPrime = g.Weight($"{path}.{name}.alpha_prime", mixing.MixingMatrix(),
                            $"Coeff-Tuning's alpha' ({mixing.Config.Parameterization}), mixing the {heads} heads' maps: Fhat^h = sum_i alpha'[h, i] F^i");
                        mapsShape ??= g.Node("Shape", $"{path}/maps_shape", [maps]);
                        var flat = g.Node("Reshape", $"{path}/{name}/maps_flat", [maps, g.Ints(0, 0, -1)]);
                        var product = g.Node("MatMul", $"{path}/{name}", [alphaPrime, flat]);
                        maps = g.Node("Reshape", $"{path}/{name}/maps_mixed", [product, mapsShape]);
                        mixed = true;
                        break;
                    default:
                        throw new InvalidOperationException($"{path}.{name}: the attention map transform {transform.GetType().Name} has no ONNX form");
                }
            }
            if (mixed) MixedLayers++;

            var context = g.Node("MatMul", $"{path}/context", [maps, v]);                                // (B, H, N, dh)
            var merged = g.Node("Reshape", $"{path}/heads_merged",
                [g.Node("Transpose", $"{path}/context_transposed", [context], OnnxGraph.AttrInts("perm", 0, 2, 1, 3)), g.Ints(0, 0, attention.Dim)]);
            return Linear(merged, attention.output, $"{path}.output");
        }

        /// <summary>y = x W^T + b as MatMul and Add; the initializer holds W transposed, [in, out].</summary>
        private string Linear(string x, Linear layer, string path)
        {
            using var wT = layer.weight!.t();
            var y = g.Node("MatMul", $"{path}/MatMul", [x, g.Weight($"{path}.weight", wT, "the Linear weight transposed to [in, out] for MatMul")]);
            return layer.bias is { } b ? g.Node("Add", $"{path}/Add", [y, g.Weight($"{path}.bias", b)]) : y;
        }

        private string LayerNorm(string x, LayerNorm norm, string path, double eps) =>
            g.Node("LayerNormalization", $"{path}/LayerNormalization", [x, g.Weight($"{path}.weight", norm.weight!), g.Weight($"{path}.bias", norm.bias!)],
                OnnxGraph.AttrInt("axis", -1), OnnxGraph.AttrFloat("epsilon", (float)eps));

        /// <summary>The exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), as nn.functional.gelu computes it.</summary>
        private string Gelu(string x, string path)
        {
            var erf = g.Node("Erf", $"{path}/gelu_Erf", [g.Node("Mul", $"{path}/gelu_scaled", [x, g.Float((float)(1.0 / Math.Sqrt(2.0)))])]);
            var gate = g.Node("Add", $"{path}/gelu_gate", [erf, g.Float(1f)]);
            return g.Node("Mul", $"{path}/gelu", [g.Node("Mul", $"{path}/gelu_half", [x, g.Float(0.5f)]), gate]);
        }

        /// <summary>BertClassifier.MeanPool: sum of the real tokens' states over max(count, 1e-9), (B, N, D) -> (B, D).</summary>
        private string MeanPool(string x)
        {
            var weights = g.Node("Unsqueeze", "pooling/mask", [g.Node("Cast", "pooling/mask_float", [AttentionMask], OnnxGraph.AttrInt("to", (long)DataType.Float)), g.Ints(-1)]);
            var sum = g.Node("ReduceSum", "pooling/sum", [g.Node("Mul", "pooling/masked", [x, weights]), g.Ints(1)], OnnxGraph.AttrInt("keepdims", 0));
            var count = g.Node("ReduceSum", "pooling/count", [weights, g.Ints(1)], OnnxGraph.AttrInt("keepdims", 0));
            return g.Node("Div", "pooling/mean", [sum, g.Node("Max", "pooling/count_clamped", [count, g.Float(1e-9f)])]);
        }

        private void Head(string features, Linear head, string path)
        {
            using var wT = head.weight!.t();
            var weight = g.Weight($"{path}.weight", wT, "the head's weight transposed to [in, out] for MatMul");
            if (head.bias is { } b) g.Node("Add", LogitsName, [g.Node("MatMul", $"{path}/MatMul", [features, weight]), g.Weight($"{path}.bias", b)]);
            else g.Node("MatMul", LogitsName, [features, weight]);
            g.Output(LogitsName, DataType.Float, "batch", head.weight!.shape[0]);
        }
    }
}
