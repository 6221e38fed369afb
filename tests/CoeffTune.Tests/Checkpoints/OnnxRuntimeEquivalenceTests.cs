using CoeffTune.Checkpoints;
using CoeffTune.Methods.Coeff;
using CoeffTune.Models;
using CoeffTune.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace CoeffTune.Tests.Checkpoints;

[Collection(RealModelsCollection.Name)]
public sealed class OnnxRuntimeEquivalenceTests(RealModelsFixture models, ITestOutputHelper output)
{
    /// <summary>Of different lengths, so that padding and the attention mask matter.</summary>
    private static readonly string[] Sentences =
    {
        "Hello!",
        "A man is playing a guitar on the stage.",
        "The quick brown fox jumps over the lazy dog, and then it runs away into the dark forest before anyone notices.",
        "Coefficients recombine attention maps.",
    };

    [SkippableTheory]
    [InlineData("minilm")]
    [InlineData("arctic-xs")]
    public void TorchSharp_forward_matches_onnx_runtime_on_a_padded_batch(string name)
    {
        var asset = models.Require(name);
        var loaded = PretrainedModels.LoadBert(name, classes: 3, cache: models.Cache);
        using var model = loaded.Model;
        model.eval();
        Assert.Empty(loaded.Report.Unexpected);
        Assert.Equal(new[] { "classifier.weight", "classifier.bias" }.Order(), loaded.Report.Missing.Order());

        using var scope = NewDisposeScope();
        using var batch = loaded.Tokenizer.EncodeBatch(Sentences);
        Assert.True(batch.Inputs.shape[1] > 20, "the batch should have long and short sentences");
        Tensor hidden, pooled;
        using (no_grad())
        {
            hidden = model.Encode(batch.Inputs, batch.AttentionMask, batch.TokenTypeIds);
            pooled = BertClassifier.MeanPool(hidden, batch.AttentionMask);
        }

        var ortHidden = RunOnnxRuntime(asset.ModelPath(models.Cache), batch);
        var ortPooled = BertClassifier.MeanPool(ortHidden, batch.AttentionMask);
        double hiddenDiff = (hidden - ortHidden).abs().max().item<float>();
        double pooledDiff = (pooled - ortPooled).abs().max().item<float>();
        var real = batch.AttentionMask!.to_type(ScalarType.Float32).unsqueeze(-1);
        double realDiff = ((hidden - ortHidden).abs() * real).max().item<float>();
        output.WriteLine($"{name}: max |TorchSharp - ONNX Runtime| last_hidden_state {hiddenDiff:E2} (real tokens {realDiff:E2}), mean-pooled {pooledDiff:E2}");
        Assert.True(hiddenDiff <= 1e-4, $"last_hidden_state differs by {hiddenDiff:E2}");
        Assert.True(pooledDiff <= 1e-4, $"mean-pooled embedding differs by {pooledDiff:E2}");
    }

    /// <summary>Runs the ONNX file on the same ids, feeding only the inputs the graph declares.</summary>
    private static Tensor RunOnnxRuntime(string modelPath, Batch batch)
    {
        using var ort = new InferenceSession(modelPath);
        int b = (int)batch.Inputs.shape[0], n = (int)batch.Inputs.shape[1];
        var available = new Dictionary<string, Tensor>
        {
            ["input_ids"] = batch.Inputs, ["attention_mask"] = batch.AttentionMask!, ["token_type_ids"] = batch.TokenTypeIds!,
        };
        var inputs = ort.InputMetadata.Keys.Select(k =>
        {
            Assert.True(available.ContainsKey(k), $"the ONNX model asks for an input '{k}' the test does not have");
            var data = available[k].data<long>().ToArray();
            return NamedOnnxValue.CreateFromTensor(k, new DenseTensor<long>(data, new[] { b, n }));
        }).ToList();
        using var results = ort.Run(inputs);
        var last = results.FirstOrDefault(r => r.Name == "last_hidden_state") ?? results.First();
        var t = last.AsTensor<float>();
        Assert.Equal(new[] { b, n, 384 }, t.Dimensions.ToArray());
        return tensor(t.ToArray(), new long[] { b, n, t.Dimensions[2] });
    }

    [SkippableFact]
    public void Paraphrases_are_closer_than_unrelated_sentences()
    {
        models.Require("minilm");
        var loaded = PretrainedModels.LoadBert("minilm", cache: models.Cache);
        using var model = loaded.Model;
        model.eval();
        var e = Embed(model, loaded.Tokenizer, new[]
        {
            "A man is playing a guitar.", "Someone is playing an instrument.", "The stock market fell sharply today.",
        });
        double paraphrase = e[0].dot(e[1]).item<float>();
        double unrelated = e[0].dot(e[2]).item<float>();
        output.WriteLine($"cosine: paraphrase {paraphrase:F3}, unrelated {unrelated:F3}");
        Assert.True(paraphrase - unrelated > 0.3, $"paraphrase {paraphrase:F3} vs unrelated {unrelated:F3}");
    }

    [SkippableFact]
    public void Coeff_tuning_with_alpha_zero_leaves_minilm_embeddings_unchanged()
    {
        models.Require("minilm");
        var loaded = PretrainedModels.LoadBert("minilm", cache: models.Cache);
        using var model = loaded.Model;
        model.eval();
        using var before = Embed(model, loaded.Tokenizer, Sentences);
        var attached = CoeffTuning.Apply(model);
        Assert.Equal(6, attached.Count);
        using var after = Embed(model, loaded.Tokenizer, Sentences);
        double diff = (before - after).abs().max().item<float>();
        output.WriteLine($"max |embedding with alpha = 0 - without Coeff-Tuning| {diff:E2}");
        Assert.True(diff <= 1e-5, $"embeddings moved by {diff:E2}");
    }

    /// <summary>Mean-pooled, L2-normalised embeddings (B, D).</summary>
    private static Tensor Embed(BertClassifier model, TextTokenizer tokenizer, IReadOnlyList<string> texts)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var batch = tokenizer.EncodeBatch(texts);
        var hidden = model.Encode(batch.Inputs, batch.AttentionMask, batch.TokenTypeIds);
        return nn.functional.normalize(BertClassifier.MeanPool(hidden, batch.AttentionMask), p: 2, dim: 1).MoveToOuterDisposeScope();
    }
}
