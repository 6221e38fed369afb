using System.CommandLine;
using System.Text.Json;
using CoeffTune.Cli.Commands;
using CoeffTune.Tests.Checkpoints;

namespace CoeffTune.Tests.Cli;

[Collection(RealModelsCollection.Name)]
public sealed class FetchAndEmbedCommandTests(RealModelsFixture models)
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [SkippableFact]
    public void Fetch_says_already_present_the_second_time()
    {
        models.Require("minilm");
        var (code, stdout, _) = Run("fetch", "minilm");
        Assert.Equal(0, code);
        Assert.Equal($"minilm: already present in {models.Cache.PathFor("minilm")}", stdout.Trim());
    }

    [Fact]
    public void Fetch_of_an_unknown_asset_fails_with_one_line()
    {
        var (code, _, stderr) = Run("fetch", "no-such-model");
        Assert.Equal(1, code);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith("error: unknown asset 'no-such-model'", stderr);
    }

    [SkippableFact]
    public void Embed_json_prints_unit_vectors_of_384_values()
    {
        models.Require("minilm");
        var (code, stdout, _) = Run("embed", "--model", "minilm", "--json", "A cat sleeps.", "A kitten is sleeping.");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var embeddings = doc.RootElement.GetProperty("embeddings").EnumerateArray().ToList();
        Assert.Equal(2, embeddings.Count);
        foreach (var e in embeddings)
        {
            var v = e.GetProperty("vector").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            Assert.Equal(384, v.Length);
            Assert.Equal(1.0, Math.Sqrt(v.Sum(x => x * x)), 4);
        }
    }

    [SkippableFact]
    public void Embed_summary_shows_dims_and_the_similarity_matrix()
    {
        models.Require("minilm");
        var (code, stdout, _) = Run("embed", "A cat sleeps.", "Stocks fell.");
        Assert.Equal(0, code);
        Assert.Contains("minilm: 384 dims", stdout);
        Assert.Contains("cosine similarity:", stdout);
        Assert.Contains("1.0000", stdout);
    }
}
