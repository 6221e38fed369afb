using System.Text.Json;
using CoeffTune.Tests.Checkpoints;

namespace CoeffTune.Tests.Cli;

[Collection(RealModelsCollection.Name)]
public sealed class SearchAndEmbedPoolingTests(RealModelsFixture models)
{
    [SkippableFact]
    public void Search_finds_the_matching_text_and_reuses_its_cached_vectors()
    {
        models.Require("minilm");
        using var dir = new TempDir();
        var corpus = dir.File("corpus.txt", "The cat sat on the mat.\nStock markets fell sharply on Monday.\n\nA recipe for tomato soup with basil.\nThe football team won the championship.\n");
        var (code, stdout, stderr) = CliRunner.Run("search", "--model", "minilm", "--corpus", corpus, "--top", "2", "--json", "how do I make soup", "a kitten resting on a rug");
        Assert.True(code == 0, stderr);
        Assert.Contains("vectors cached in", stderr);
        using (var doc = JsonDocument.Parse(stdout))
        {
            Assert.Equal(4, doc.RootElement.GetProperty("texts").GetInt32());   // the blank line is not a text
            var queries = doc.RootElement.GetProperty("queries").EnumerateArray().ToList();
            Assert.Equal(2, queries[0].GetProperty("hits").GetArrayLength());
            Assert.Equal(2, queries[0].GetProperty("hits")[0].GetProperty("index").GetInt32());
            Assert.Equal(0, queries[1].GetProperty("hits")[0].GetProperty("index").GetInt32());
            var scores = queries[0].GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("score").GetDouble()).ToList();
            Assert.True(scores[0] > scores[1] + 0.2, $"the soup recipe should stand out: {string.Join(", ", scores)}");
        }
        Assert.Single(Directory.GetFiles(dir.Path, "corpus.txt.minilm-*.embeddings.safetensors"));
        var again = CliRunner.Run("search", "--model", "minilm", "--corpus", corpus, "--top", "1", "soup");
        Assert.Equal(0, again.Code);
        Assert.Contains("vectors read from", again.Err);
        // An edited corpus is embedded anew, under another name.
        File.AppendAllText(corpus, "Soup kitchens feed the hungry.\n");
        var edited = CliRunner.Run("search", "--model", "minilm", "--corpus", corpus, "--top", "1", "soup");
        Assert.Contains("vectors cached in", edited.Err);
        Assert.Equal(2, Directory.GetFiles(dir.Path, "corpus.txt.minilm-*.embeddings.safetensors").Length);
    }

    [SkippableFact]
    public void Arctic_embeds_with_cls_pooling_and_its_query_prompt_by_name()
    {
        models.Require("arctic-xs");
        var (code, stdout, stderr) = CliRunner.Run("embed", "--model", "arctic-xs", "--json", "--prompt", "query", "what is a filter subspace?");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("cls", doc.RootElement.GetProperty("pooling").GetString());
        Assert.Equal("Represent this sentence for searching relevant passages: ", doc.RootElement.GetProperty("prompt").GetString());
        Assert.Equal(512, doc.RootElement.GetProperty("max_tokens").GetInt32());
        var withPrompt = doc.RootElement.GetProperty("embeddings")[0].GetProperty("vector").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        // The prompt is text prefixed to the input: --prompt-text with the same words gives the same vector.
        var (_, plain, _) = CliRunner.Run("embed", "--model", "arctic-xs", "--json", "Represent this sentence for searching relevant passages: what is a filter subspace?");
        using var plainDoc = JsonDocument.Parse(plain);
        var prefixed = plainDoc.RootElement.GetProperty("embeddings")[0].GetProperty("vector").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.Equal(withPrompt, prefixed);
        var wrong = CliRunner.Run("embed", "--model", "arctic-xs", "--prompt", "passage", "x");
        Assert.Equal(1, wrong.Code);
        Assert.Contains("no prompt named 'passage'; the model has query", wrong.Err);
    }

    [SkippableFact]
    public void Pooling_can_be_overridden_and_the_choice_is_printed()
    {
        models.Require("minilm");
        var (code, stdout, _) = CliRunner.Run("embed", "--model", "minilm", "--pooling", "cls", "A cat sleeps.");
        Assert.Equal(0, code);
        Assert.Contains("cls pooling, L2-normalised, at most 256 tokens", stdout);
        var bad = CliRunner.Run("embed", "--pooling", "median", "x");
        Assert.Equal(1, bad.Code);
        Assert.Contains("--pooling: unknown pooling 'median'", bad.Err);
    }
}
