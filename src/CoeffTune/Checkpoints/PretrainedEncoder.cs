using CoeffTune.Assets;
using CoeffTune.Assets.Models;
using CoeffTune.Embeddings;
using CoeffTune.Text;

namespace CoeffTune.Checkpoints;

/// <summary>
/// A sentence encoder the library can fetch by name: its files (<see cref="Asset"/>), the tokenizer settings it
/// was published with (its package ships only vocab.txt), and its sentence-transformers configuration
/// (pooling, normalisation, length, prompts).
/// </summary>
public sealed record PretrainedEncoder(SentenceTransformerAsset Asset, WordPieceSettings Tokenizer, SentenceTransformerConfig Sentence)
{
    public string Name => Asset.Name;

    public static PretrainedEncoder MiniLM { get; } = new(SentenceTransformerAsset.MiniLM, WordPieceSettings.UncasedBert, SentenceTransformerConfig.MiniLM);

    public static PretrainedEncoder ArcticXs { get; } = new(SentenceTransformerAsset.ArcticXs, WordPieceSettings.UncasedBert, SentenceTransformerConfig.ArcticEmbedXs);

    public static IReadOnlyList<PretrainedEncoder> All { get; } = [MiniLM, ArcticXs];

    /// <summary>The encoder named <paramref name="name"/> (case-insensitive), or null.</summary>
    public static PretrainedEncoder? Find(string name) =>
        All.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The tokenizer of the fetched model, cutting texts at <paramref name="maxLength"/> (null: the tokenizer's own limit).</summary>
    public TextTokenizer LoadTokenizer(AssetCache cache, int? maxLength = null) =>
        TextTokenizer.FromWordPiece(Asset.VocabPath(cache), Tokenizer, maxLength);
}
