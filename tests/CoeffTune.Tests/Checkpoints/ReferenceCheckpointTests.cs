using System.Text.Json;
using CoeffTune.Checkpoints;
using CoeffTune.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Checkpoints;

/// <summary>
/// The checkpoint loaders against checkpoints and outputs made independently of this library:
/// tools/reference/make_model_fixtures.py builds tiny models in plain PyTorch as transformers'
/// BertForSequenceClassification / BertModel / ViTForImageClassification and timm's VisionTransformer lay them
/// out and compute them, and writes their safetensors, config.json and outputs (computed in float64) under
/// Fixtures/Models/. Here the real loaders read those files and this library's models must give the same
/// outputs. A wrong belief about a layout (key names, timm's q/k/v order, LayerNorm eps, GELU form, pre- or
/// post-norm, positions, the pooler) cannot pass by being mirrored on both sides, as it could when a test
/// renames this library's own weights. The script checked that each such misreading moves the outputs by at
/// least 20 times <see cref="Tolerance"/> (expected.json lists by how much).
/// </summary>
public sealed class ReferenceCheckpointTests(ITestOutputHelper output)
{
    /// <summary>
    /// Absolute tolerance on every output. The expected values are exact up to float64 rounding (computed in
    /// float64 from the float32 weights); this library runs in float32, whose unit roundoff is 6e-8. Two layers
    /// of width 24 with outputs of magnitude up to about 4.5 accumulate a few hundred roundings, and the first
    /// LayerNorm divides by the standard deviation of tiny embeddings (about 2e-3, chosen so that eps matters):
    /// PyTorch's own float32 forward of the same models is off by at most 3.3e-6 (expected.json,
    /// float32_error_of_reference). 2e-5 leaves a factor of six for a different kernel order, and is still 40 times
    /// smaller than the smallest change any misreading makes (GELU's tanh form in the transformers ViT: 8.6e-4).
    /// </summary>
    private const double Tolerance = 2e-5;

    private static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Models", name);

    [Fact]
    public void Transformers_bert_for_sequence_classification_matches_the_reference()
    {
        var expected = Expected.Read("hf-bert-sequence-classification");
        var (model, report) = BertCheckpoint.Load(Path.Combine(Dir("hf-bert-sequence-classification"), "model.safetensors"),
            pooling: Pooling.Pooler);
        using (model)
        {
            model.eval();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var (ids, mask, types) = expected.TextInputs();
            var hidden = model.Encode(ids, mask, types);
            Compare(expected, "last_hidden_state", hidden);
            Compare(expected, "mean_pooled", SentencePooling.Pool(hidden, mask, Pooling.Mean));
            Compare(expected, "pooler_output", model.Pool(hidden, mask));
            // BertForSequenceClassification: classifier(pooler(h[:, 0])), through the model's own forward.
            var batch = new Batch(ids, mask, types);  // its tensors belong to the dispose scope
            Compare(expected, "logits", model.forward(batch));
            AssertAllMatched();

            // What the loader read, checked after the outputs so that a misreading fails on the numbers it changes.
            // Every tensor is used (the pooler too); heads and eps come from config.json beside the file (the
            // loader's own guess for width 24 would be 12 heads).
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            Assert.Empty(report.Ignored);
            var c = model.Config;
            Assert.Equal((24, 2, 4, 48, 16, 2, 40, 3), (c.Dim, c.Depth, c.Heads, c.IntermediateDim, c.MaxPositions, c.TypeVocabSize, c.VocabSize, c.Classes));
            Assert.Equal(1e-12, c.LayerNormEps);
            Assert.Equal(Pooling.Pooler, c.Pooling);
        }
    }

    [Fact]
    public void Transformers_bert_model_without_prefix_gives_the_same_encoder_and_pooler()
    {
        // The same weights as a bare BertModel: no "bert." prefix, no classifier, and the legacy position_ids buffer.
        var expected = Expected.Read("hf-bert-sequence-classification");
        var path = Path.Combine(Dir("hf-bert-model"), "model.safetensors");
        var (model, report) = BertCheckpoint.Load(path, pooling: Pooling.Pooler);
        using (model)
        {
            model.eval();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var (ids, mask, types) = expected.TextInputs();
            var hidden = model.Encode(ids, mask, types);
            Compare(expected, "last_hidden_state", hidden, "hf-bert-model");
            Compare(expected, "pooler_output", model.Pool(hidden, mask), "hf-bert-model");
            AssertAllMatched();
            Assert.Empty(report.Unexpected);
            Assert.Equal(new[] { "embeddings.position_ids" }, report.Ignored);
            Assert.Equal(new[] { "classifier.bias", "classifier.weight" }, report.Missing.Order(StringComparer.Ordinal));  // a fresh head
            Assert.Equal((4, 1e-12), (model.Config.Heads, model.Config.LayerNormEps));
        }

        // Pooled by mean (the library's default), the checkpoint's pooler is set aside and the features are the mean.
        var (meanModel, meanReport) = BertCheckpoint.Load(path);
        using (meanModel)
        {
            meanModel.eval();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var (ids, mask, types) = expected.TextInputs();
            var batch = new Batch(ids, mask, types);  // its tensors belong to the dispose scope
            Compare(expected, "mean_pooled", meanModel.Features(batch), "hf-bert-model");
            AssertAllMatched();
            Assert.Contains("pooler.weight", meanReport.Ignored);
        }
    }

    [Fact]
    public void Transformers_vit_for_image_classification_matches_the_reference() => VitMatches("hf-vit-image-classification", 1e-12);

    /// <summary>timm's config.json names no LayerNorm eps (timm's is 1e-6) and keeps the head count under model_args.</summary>
    [Fact]
    public void Timm_vision_transformer_matches_the_reference() => VitMatches("timm-vit", 1e-6);

    private void VitMatches(string fixture, double eps)
    {
        var expected = Expected.Read(fixture);
        var (model, report) = VitCheckpoint.Load(Path.Combine(Dir(fixture), "model.safetensors"));
        using (model)
        {
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            CompareImageOutputs(model, expected);
            var c = model.Config;  // after the outputs, as above
            Assert.Equal((16, 4, 3, 24, 2, 4, 48, 5), (c.ImageSize, c.PatchSize, c.Channels, c.Dim, c.Depth, c.Heads, c.MlpDim, c.Classes));
            Assert.Equal(eps, c.LayerNormEps);
        }
    }

    private void CompareImageOutputs(VisionTransformer model, Expected expected)
    {
        model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var batch = new Batch(expected.Input("pixel_values", ScalarType.Float32));
        Compare(expected, "cls_feature", model.Features(batch));
        Compare(expected, "logits", model.forward(batch));
        AssertAllMatched();
    }

    private void Compare(Expected expected, string name, Tensor actual, string? checkpoint = null)
    {
        var label = $"{checkpoint ?? expected.Name} {name}";
        var (shape, values) = expected.Output(name);
        Assert.Equal(shape, actual.shape);
        var got = TestUtil.Values(actual);
        double max = 0;
        int worst = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double d = Math.Abs(got[i] - values[i]);
            if (d > max || double.IsNaN(d)) (max, worst) = (double.IsNaN(d) ? double.PositiveInfinity : d, i);
        }
        output.WriteLine($"{label}: max |diff| {max:0.###e+0} over {got.Length} values");
        if (!(max <= Tolerance))
            mismatches.Add($"{label}: max |diff| {max:0.###e+0} > {Tolerance:0.#e+0} at flat index {worst} (expected {values[worst]}, got {got[worst]})");
    }

    /// <summary>Every output compared so far that is off, all named at once (one misreading usually moves several).</summary>
    private readonly List<string> mismatches = new();

    private void AssertAllMatched() => Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));

    /// <summary>A fixture's expected.json: inputs and outputs as {"shape": [...], "data": [...]} (row-major).</summary>
    private sealed class Expected
    {
        public required string Name { get; init; }
        public required JsonElement Root { get; init; }

        public static Expected Read(string name)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir(name), "expected.json")));
            return new Expected { Name = name, Root = doc.RootElement.Clone() };
        }

        private static (long[] Shape, JsonElement Data) Entry(JsonElement e) =>
            (e.GetProperty("shape").EnumerateArray().Select(s => s.GetInt64()).ToArray(), e.GetProperty("data"));

        public Tensor Input(string name, ScalarType dtype)
        {
            var (shape, data) = Entry(Root.GetProperty("inputs").GetProperty(name));
            return dtype == ScalarType.Int64
                ? tensor(data.EnumerateArray().Select(v => v.GetInt64()).ToArray(), shape)
                : tensor(data.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray(), shape);
        }

        public (Tensor Ids, Tensor Mask, Tensor Types) TextInputs() =>
            (Input("input_ids", ScalarType.Int64), Input("attention_mask", ScalarType.Int64), Input("token_type_ids", ScalarType.Int64));

        public (long[] Shape, double[] Values) Output(string name)
        {
            var (shape, data) = Entry(Root.GetProperty("outputs").GetProperty(name));
            return (shape, data.EnumerateArray().Select(v => v.GetDouble()).ToArray());
        }
    }
}
