using CoeffTune.Assets;
using CoeffTune.Data;
using CoeffTune.Text;
using CoeffTune.Training;
using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>
/// A model family's preprocessing for one loaded model: how a task's data and raw inputs become the batches
/// the model reads, and a few fixed probe inputs for checks (merge equivalence, export).
/// </summary>
public interface IModelInputs
{
    /// <summary>The kind of task the model reads.</summary>
    TaskKind Kind { get; }

    /// <summary>Throws, naming the task and the shapes, when the model cannot read <paramref name="task"/>'s examples.</summary>
    void Check(TaskData task);

    /// <summary>Batches of a labelled set; refuses a set the model cannot read.</summary>
    IBatchSource Source(ILabeledDataset data);

    /// <summary>Raw inputs as one batch: texts for a text model, image file paths for an image model.</summary>
    Batch Encode(IReadOnlyList<string> inputs, Device device);

    /// <summary>A few fixed inputs, the same on every call: sentences, or seeded random images.</summary>
    Batch Probe(Device device);
}

/// <summary>What building a family's base classifier takes: the model's name or path and how to set it up.</summary>
/// <param name="Name">An asset name, a cache name (the ViT pretrained here) or a checkpoint path.</param>
/// <param name="Classes">Outputs of the fresh classification head.</param>
/// <param name="MaxTokens">Text models: tokens kept per text.</param>
/// <param name="Pooling">Text models: pool this way instead of the model's own sentence pooling.</param>
/// <param name="MayPretrain">False when the name was read from an adapter: an uncached model pretrained here is an error, not a pretraining run.</param>
/// <param name="Heads">Attention heads of a checkpoint file that does not say them.</param>
public sealed record BaseModelRequest(string Name, int Classes, int MaxTokens = 128, PretrainOptions? Pretrain = null, AssetCache? Cache = null,
    TextWriter? Log = null, Pooling? Pooling = null, bool MayPretrain = true, int? Heads = null);

/// <summary>A family's base classifier with a fresh head, and its preprocessing. Text models come with their tokenizer.</summary>
public sealed record BaseModel(TransformerClassifier Model, IModelInputs Inputs, TextTokenizer? Tokenizer = null);
