using System.Text.Json;
using CoeffTune.Checkpoints;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Text;
using Xunit.Abstractions;

namespace CoeffTune.Tests.Text;

/// <summary>One text of a reference fixture: what another implementation of Hugging Face's tokenizers gave.</summary>
public sealed record ReferenceText(string Source, string Text, int[] Ids, string[] Tokens);

/// <summary>
/// Reference fixtures written by tools/reference/make-tokenizer-fixtures.mjs with Hugging Face's pure-JavaScript
/// tokenizers (a different implementation from the Rust library the project runs): real SpamAssassin and
/// Brown lines and adversarial texts, with the ids and tokens the reference gives them.
/// </summary>
public static class ReferenceFixtures
{
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Tokenizers", name);

    public static IReadOnlyList<ReferenceText> Load(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(PathOf(name)));
        return doc.RootElement.GetProperty("texts").EnumerateArray().Select(t => new ReferenceText(
            t.GetProperty("source").GetString()!, t.GetProperty("text").GetString()!,
            t.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray(),
            t.GetProperty("tokens").EnumerateArray().Select(i => i.GetString()!).ToArray())).ToList();
    }

    /// <summary>Every mismatch as one line, for a failure message that says where and how the ids differ.</summary>
    public static List<string> Mismatches(IReadOnlyList<ReferenceText> expected, Func<ReferenceText, (int[] Ids, string[] Tokens)> actual)
    {
        var bad = new List<string>();
        foreach (var e in expected)
        {
            var (ids, tokens) = actual(e);
            if (!ids.SequenceEqual(e.Ids) || !tokens.SequenceEqual(e.Tokens))
                bad.Add($"{e.Source}: {TerminalText.Quote(e.Text)}\n  expected {string.Join(" ", e.Tokens)}\n  got      {string.Join(" ", tokens)}");
        }
        return bad;
    }
}

[Collection(RealModelsCollection.Name)]
public sealed class ReferenceTokenizationTests(RealModelsFixture models, ITestOutputHelper output)
{
    [Fact]
    public void Fixtures_cover_real_lines_and_adversarial_cases()
    {
        var texts = ReferenceFixtures.Load("wordpiece-minilm.json");
        Assert.True(texts.Count >= 2000, $"{texts.Count} texts");
        Assert.True(texts.Count(t => t.Source.StartsWith("spam/")) >= 800);
        Assert.True(texts.Count(t => t.Source.StartsWith("brown/")) >= 800);
        Assert.True(texts.Count(t => t.Source == "adversarial") >= 300);
        // The cases the earlier tokenizer got wrong are in the corpus.
        foreach (var probe in new[] { "\t", "\u200b", "\u00ad", "[mask]", "😀", "한", "<", "|", "_" })
            Assert.Contains(texts, t => t.Text.Contains(probe, StringComparison.Ordinal));
    }

    [SkippableFact]
    public void MiniLM_ids_and_tokens_match_the_reference_on_every_text()
    {
        models.Require("minilm");
        var encoder = PretrainedEncoder.MiniLM;
        using var tokenizer = TextTokenizer.FromWordPiece(encoder.Asset.VocabPath(models.Cache), encoder.Tokenizer);
        var texts = ReferenceFixtures.Load("wordpiece-minilm.json");
        Assert.True(texts.All(t => t.Ids.Length <= tokenizer.MaxLength), "the fixture's texts fit the model; none is cut");
        var bad = ReferenceFixtures.Mismatches(texts, t =>
        {
            var ids = tokenizer.Encode(t.Text);
            return (ids, ids.Select(tokenizer.Token).ToArray());
        });
        output.WriteLine($"{texts.Count - bad.Count} of {texts.Count} texts identical");
        Assert.True(bad.Count == 0, $"{bad.Count} of {texts.Count} texts differ:\n" + string.Join("\n", bad.Take(10)));
    }

    [SkippableFact]
    public void Gpt2_byte_level_bpe_matches_the_reference_on_every_text()
    {
        var folder = models.RequireAsset("gpt2");
        using var tokenizer = TextTokenizer.FromFolder(folder);
        var texts = ReferenceFixtures.Load("bpe-gpt2.json");
        var bad = ReferenceFixtures.Mismatches(texts, t =>
        {
            var ids = tokenizer.Encode(t.Text);
            return (ids, ids.Select(tokenizer.Token).ToArray());
        });
        output.WriteLine($"{texts.Count - bad.Count} of {texts.Count} texts identical");
        Assert.True(bad.Count == 0, $"{bad.Count} of {texts.Count} texts differ:\n" + string.Join("\n", bad.Take(10)));
    }

    /// <summary>The command a user runs: every fixture text through <c>tokenize --json --input</c> (JSONL, so tabs and newlines survive).</summary>
    [SkippableTheory]
    [InlineData("minilm", "wordpiece-minilm.json")]
    [InlineData("gpt2", "bpe-gpt2.json")]
    public void Tokenize_json_matches_the_reference_on_the_whole_corpus(string model, string fixture)
    {
        models.RequireAsset(model);
        var texts = ReferenceFixtures.Load(fixture);
        using var dir = new TempDir();
        var input = dir.File("corpus.jsonl");
        File.WriteAllLines(input, texts.Select(t => JsonSerializer.Serialize(new { text = t.Text })));
        var (code, stdout, stderr) = CoeffTune.Tests.Cli.CliRunner.Run("tokenize", "--model", model, "--json", "--input", input);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var printed = doc.RootElement.GetProperty("texts").EnumerateArray().ToList();
        Assert.Equal(texts.Count, printed.Count);
        Assert.Equal(0, doc.RootElement.GetProperty("truncated").GetInt32());
        int i = 0;
        var bad = ReferenceFixtures.Mismatches(texts, t =>
        {
            var p = printed[i++];
            Assert.Equal(t.Text, p.GetProperty("text").GetString());
            return (p.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                p.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()!).ToArray());
        });
        Assert.True(bad.Count == 0, $"{bad.Count} of {texts.Count} texts differ:\n" + string.Join("\n", bad.Take(10)));
    }
}
