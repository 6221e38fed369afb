using System.Text.Json;
using CoeffTune.Export;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Lora;
using CoeffTune.Models;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Export;

/// <summary>
/// Exported graphs run by ONNX Runtime against the library's own forward pass, on small random models whose
/// adapter parts are all set to nonzero values (alpha, LoRA's B, DoRA's magnitudes, SSF's scales and shifts),
/// so that a graph that dropped or misplaced any of them would fail.
/// </summary>
public sealed class OnnxExportTests(ITestOutputHelper output)
{
    public const double Tolerance = 1e-4;

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var architecture in new[] { "bert", "vit" })
            foreach (var recipe in new[] { "coeff", "coeff+lora", "coeff+dora", "coeff+ssf", "coeff+fact", "coeff+snell", "full" })
                data.Add(architecture, recipe);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Onnx_runtime_logits_match_the_adapted_model(string architecture, string recipe)
    {
        using var scope = NewDisposeScope();
        TransformerClassifier model = architecture == "bert" ? TinyModels.Bert() : TinyModels.Vit();
        var peft = PeftModel.Wrap(model, recipe);
        SetAdapter(peft, seed: 7);
        var batches = architecture == "bert" ? new[] { TextBatch(4, 10, seed: 1), TextBatch(2, 6, seed: 2) } : new[] { Images(4, seed: 1), Images(3, seed: 2) };
        var expected = batches.Select(b => Forward(model, b)).ToArray();
        if (recipe != "full")
            using (peft.DisableAdapters())
            {
                // The adapter changes the logits well beyond the tolerance, so a graph without it would fail.
                double effect = MaxAbsDiff(expected[0], Forward(model, batches[0]));
                Assert.True(effect > 100 * Tolerance, $"the adapter moves the logits by only {effect:E2}");
            }

        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "model.onnx");
        long bytes = OnnxExporter.Write(OnnxExporter.Build(peft, new OnnxExportOptions { Labels = ["a", "b", "c"] }), path);
        using var session = new InferenceSession(path);
        // Two batches of different sizes (and, for text, lengths) through one session: the axes are dynamic.
        double worst = batches.Select((b, i) => MaxAbsDiff(expected[i], OnnxRuntimeRun.Run(session, b, OnnxExporter.LogitsName))).Max();
        output.WriteLine($"{architecture} {recipe}: max |ONNX Runtime - CoeffTune| logits {worst:E2}; {bytes:N0} bytes");
        Assert.True(worst <= Tolerance, $"logits differ by {worst:E2}");
    }

    [Theory]
    [InlineData("coeff+adapter", "adapter")]
    [InlineData("coeff+vpt", "vpt")]
    public void A_method_that_is_neither_merged_nor_an_onnx_operation_is_refused_by_name(string recipe, string method)
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), recipe);
        var e = Assert.Throws<InvalidOperationException>(() => OnnxExporter.Build(peft));
        Assert.Contains($"{method} can neither be merged", e.Message);
    }

    [Fact]
    public void Cls_pooling_through_the_tanh_pooler_is_exported()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var model = new BertClassifier(TinyModels.BertShape with { Pooling = Pooling.Pooler, HasPooler = true });
        var peft = PeftModel.Wrap(model, "coeff+lora");
        SetAdapter(peft, seed: 8);
        Assert.NotNull(model.pooler);
        var batch = TextBatch(4, 9, seed: 3);
        var expected = Forward(model, batch);
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "cls.onnx");
        OnnxExporter.Write(OnnxExporter.Build(peft), path);
        using var session = new InferenceSession(path);
        double diff = MaxAbsDiff(expected, OnnxRuntimeRun.Run(session, batch, OnnxExporter.LogitsName));
        output.WriteLine($"bert CLS pooling + pooler, coeff+lora: max |ONNX Runtime - CoeffTune| {diff:E2}");
        Assert.True(diff <= Tolerance, $"logits differ by {diff:E2}");
    }

    [Fact]
    public void A_direct_parameterisation_exports_its_own_alpha_prime()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        var peft = PeftModel.Wrap(model, new CoeffConfig(parameterization: AlphaParameterization.DirectIdentity), new LoraConfig(rank: 4));
        SetAdapter(peft, seed: 9);
        var batch = TextBatch(3, 8, seed: 4);
        var expected = Forward(model, batch);
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "direct.onnx");
        OnnxExporter.Write(OnnxExporter.Build(peft), path);
        using var session = new InferenceSession(path);
        double diff = MaxAbsDiff(expected, OnnxRuntimeRun.Run(session, batch, OnnxExporter.LogitsName));
        Assert.True(diff <= Tolerance, $"logits differ by {diff:E2}");
    }

    /// <summary>maps unchanged; no ONNX form.</summary>
    private sealed class Unexportable() : CoeffTune.Attention.AttentionMapTransform(nameof(Unexportable))
    {
        public override Tensor forward(Tensor maps) => maps.alias();
    }

    [Fact]
    public void Two_mixings_on_a_layer_export_in_their_order_and_a_transform_without_onnx_form_is_refused()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        torch.manual_seed(12);
        foreach (var a in model.modules().OfType<CoeffTune.Attention.MultiHeadAttention>())
            foreach (var name in new[] { "mixing", "second" })
            {
                var m = new CoeffMixing(a.Heads, new CoeffConfig());
                m.SetAlpha(randn(a.Heads, a.Heads) * 0.4);
                a.AttachMapTransform(m, name);
            }
        model.eval();
        var batch = TextBatch(3, 8, seed: 5);
        var expected = Forward(model, batch);
        // alpha'_2 alpha'_1 differs from alpha'_1 alpha'_2: a graph mixing in the other order would not match.
        var layer = model.layers[0].attention.MapTransforms.Cast<CoeffMixing>().ToArray();
        Assert.True(MaxAbsDiff(layer[1].MixingMatrix().matmul(layer[0].MixingMatrix()), layer[0].MixingMatrix().matmul(layer[1].MixingMatrix())) > 1e-2);

        var proto = OnnxExporter.Build(model);
        Assert.Equal(["layers.0.attention/mixing", "layers.0.attention/second", "layers.1.attention/mixing", "layers.1.attention/second"],
            proto.Graph.Node.Where(n => n.OpType == "MatMul" && n.Input[0].EndsWith(".alpha_prime")).Select(n => n.Name).ToArray());
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "two.onnx");
        OnnxExporter.Write(proto, path);
        using var session = new InferenceSession(path);
        double diff = MaxAbsDiff(expected, OnnxRuntimeRun.Run(session, batch, OnnxExporter.LogitsName));
        Assert.True(diff <= Tolerance, $"logits differ by {diff:E2}");

        model.layers[1].attention.AttachMapTransform(new Unexportable(), "custom");
        var e = Assert.Throws<InvalidOperationException>(() => OnnxExporter.Build(model));
        Assert.Contains("layers.1.attention.custom", e.Message);
        Assert.Contains(nameof(Unexportable), e.Message);
    }

    [Fact]
    public void Sentence_embedding_export_matches_mean_pooled_normalised_states()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        var peft = PeftModel.Wrap(model, "coeff+dora");
        SetAdapter(peft, seed: 10);
        var batch = TextBatch(4, 10, seed: 5);
        Tensor expected;
        using (no_grad())
            expected = nn.functional.normalize(BertClassifier.MeanPool(model.Encode(batch.Inputs, batch.AttentionMask, batch.TokenTypeIds), batch.AttentionMask), p: 2, dim: 1);
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "embed.onnx");
        OnnxExporter.Write(OnnxExporter.Build(peft, new OnnxExportOptions { Output = OnnxOutput.SentenceEmbedding }), path);
        using var session = new InferenceSession(path);
        Assert.Equal([OnnxExporter.SentenceEmbeddingName], session.OutputMetadata.Keys.ToArray());
        var actual = OnnxRuntimeRun.Run(session, batch, OnnxExporter.SentenceEmbeddingName);
        Assert.Equal(new long[] { 4, TinyModels.BertShape.Dim }, actual.shape);
        double diff = MaxAbsDiff(expected, actual);
        output.WriteLine($"bert coeff+dora sentence embedding: max |ONNX Runtime - CoeffTune| {diff:E2}");
        Assert.True(diff <= Tolerance, $"embeddings differ by {diff:E2}");
    }

    [Fact]
    public void The_graph_declares_opset_17_dynamic_axes_and_its_provenance()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        var peft = PeftModel.Wrap(model, "coeff+lora");
        SetAdapter(peft, seed: 11);
        var proto = OnnxExporter.Build(peft, new OnnxExportOptions { Labels = ["ham", "spam", "eggs"], BaseName = "tiny", MaxTokens = 10 });
        Assert.Equal(OnnxExporter.Opset, Assert.Single(proto.OpsetImport).Version);
        Assert.Equal(17, OnnxExporter.Opset);
        // One mixing MatMul after each of the two layers' Softmax, fed by that layer's alpha'.
        var mixing = proto.Graph.Node.Where(n => n.Name.EndsWith("/" + CoeffTuning.ModuleName)).ToList();
        Assert.Equal(["layers.0.attention/mixing", "layers.1.attention/mixing"], mixing.Select(n => n.Name).ToArray());
        Assert.All(mixing, n => Assert.EndsWith(".mixing.alpha_prime", n.Input[0]));

        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "model.onnx");
        OnnxExporter.Write(proto, path);
        using var session = new InferenceSession(path);
        Assert.Equal([OnnxExporter.InputIds, OnnxExporter.AttentionMask, OnnxExporter.TokenTypeIds], session.InputMetadata.Keys.ToArray());
        Assert.All(session.InputMetadata.Values, m => Assert.Equal(new[] { -1, -1 }, m.Dimensions));
        Assert.Equal(new[] { -1, 3 }, session.OutputMetadata[OnnxExporter.LogitsName].Dimensions);
        var meta = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal(["ham", "spam", "eggs"], JsonSerializer.Deserialize<string[]>(meta[OnnxExporter.MetadataKeys.Labels]));
        Assert.Equal("coeff+lora", meta[OnnxExporter.MetadataKeys.Recipe]);
        Assert.Equal(peft.BaseIdentity, meta[OnnxExporter.MetadataKeys.BaseModelIdentity]);
        Assert.Equal("tiny", meta[OnnxExporter.MetadataKeys.BaseModel]);
        Assert.Equal("lora", meta[OnnxExporter.MetadataKeys.Merged]);
        Assert.Equal("10", meta[OnnxExporter.MetadataKeys.MaxTokens]);
        Assert.Equal(8, JsonDocument.Parse(meta[OnnxExporter.MetadataKeys.Methods]).RootElement.GetProperty("lora").GetProperty("r").GetInt32());
        Assert.Equal("CoeffTune", session.ModelMetadata.ProducerName);
    }

    [Fact]
    public void A_plain_model_exports_without_a_recipe_and_one_with_unmerged_layers_is_refused()
    {
        using var scope = NewDisposeScope();
        var vit = TinyModels.Vit();
        var batch = Images(2, seed: 6);
        var expected = Forward(vit, batch);
        using var tmp = new TempDir();
        var path = Path.Combine(tmp.Path, "plain.onnx");
        OnnxExporter.Write(OnnxExporter.Build(vit), path);
        using (var session = new InferenceSession(path))
        {
            Assert.True(MaxAbsDiff(expected, OnnxRuntimeRun.Run(session, batch, OnnxExporter.LogitsName)) <= Tolerance);
            Assert.Equal("none", session.ModelMetadata.CustomMetadataMap[OnnxExporter.MetadataKeys.Recipe]);
        }

        var bert = TinyModels.Bert();
        PeftModel.Wrap(bert, "lora");
        var e = Assert.Throws<InvalidOperationException>(() => OnnxExporter.Build(bert));
        Assert.Contains("PeftModel", e.Message);
    }

    [Fact]
    public void Refusals_name_their_reason()
    {
        using var scope = NewDisposeScope();
        var vit = PeftModel.Wrap(TinyModels.Vit(), "coeff");
        var e = Assert.Throws<ArgumentException>(() => OnnxExporter.Build(vit, new OnnxExportOptions { Output = OnnxOutput.SentenceEmbedding }));
        Assert.Contains("text models", e.Message);

        var bert = PeftModel.Wrap(TinyModels.Bert(), "coeff+lora");
        using (bert.DisableAdapters())
            Assert.Contains("turned off", Assert.Throws<InvalidOperationException>(() => OnnxExporter.Build(bert)).Message);
    }

    [Fact]
    public void A_write_that_fails_leaves_no_file_behind()
    {
        using var scope = NewDisposeScope();
        var proto = OnnxExporter.Build(TinyModels.Vit());
        using var tmp = new TempDir();
        // A folder where the file should go: the whole model is written to a temporary file, then the rename fails.
        var target = Path.Combine(tmp.Path, "model.onnx");
        Directory.CreateDirectory(target);
        Assert.ThrowsAny<IOException>(() => OnnxExporter.Write(proto, target));
        Assert.Empty(Directory.GetFiles(tmp.Path, "*", SearchOption.AllDirectories));
    }

    /// <summary>Every trainable tensor moved off its initial value: alpha by about 0.3, the rest by about 0.05.</summary>
    internal static void SetAdapter(PeftModel peft, int seed)
    {
        torch.manual_seed(seed);
        var state = peft.Model.state_dict();
        using var _ = no_grad();
        foreach (var name in peft.TrainableNames)
        {
            var t = state[name];
            t.add_(randn_like(t).mul_(name.EndsWith(".alpha") ? 0.3 : 0.05));
        }
        peft.Model.eval();
    }

    private static Tensor Forward(TransformerClassifier model, Batch batch)
    {
        using var _ = no_grad();
        return model.forward(batch);
    }

    /// <summary>Ids from the tiny vocabulary, token types 0/1, and padding of different lengths (row 0 is never padded).</summary>
    private static Batch TextBatch(int b, int n, int seed)
    {
        torch.manual_seed(seed);
        var ids = randint(0, TinyModels.BertShape.VocabSize, new long[] { b, n });
        var types = randint(0, 2, new long[] { b, n });
        var mask = ones(b, n, ScalarType.Int64);
        for (int i = 1; i < b; i++) mask[i, TensorIndex.Slice(n - 1 - (3 * i) % (n - 1))] = 0;
        return new Batch(ids, mask, types);
    }

    private static Batch Images(int b, int seed)
    {
        torch.manual_seed(seed);
        return new Batch(rand(b, 1, 8, 8));
    }
}
